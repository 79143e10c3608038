// Command demo runs the seed article's multi-stage image build as a real
// job, end to end: it builds dind-executor, makes the job's repository, and
// drives the binary through the runner emulator exactly as GitLab Runner
// would (config, prepare, every stage, cleanup), printing the job log.
//
// Run it with `make demo` (which first starts the Engine and builds the
// offline images).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	binary := flag.String("binary", "", "a built dind-executor to drive (default: build ./cmd/dind-executor)")
	workRoot := flag.String("work", "", "where the job's repository and config go; with a remote or containerized Engine, a path its host shares (default: a new temp dir)")
	script := flag.String("script", "", "run these lines (one per line) instead of the seed job's build and run")
	flag.Parse()

	work, err := os.MkdirTemp(*workRoot, "dind-executor-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	if *binary == "" {
		*binary = filepath.Join(work, "dind-executor")
		build := exec.CommandContext(ctx, "go", "build", "-o", *binary, "./cmd/dind-executor")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if err := build.Run(); err != nil {
			return fmt.Errorf("build dind-executor (run the demo from the repository root): %w", err)
		}
	}
	repo := filepath.Join(work, "repo")
	sha, err := seedjob.WriteRepo(repo)
	if err != nil {
		return fmt.Errorf("make the job's repository: %w", err)
	}
	configPath := filepath.Join(work, "config.toml")
	if err := os.WriteFile(configPath, []byte(seedjob.Config(repo)), 0o600); err != nil {
		return err
	}

	emulator := &runner.Emulator{
		Binary:    *binary,
		Args:      []string{"--config", configPath},
		Log:       os.Stdout,
		RunnerLog: os.Stderr,
	}
	started := time.Now()
	job := seedjob.Job(time.Now().Unix()%1_000_000+1, sha)
	if *script != "" {
		job.Script = strings.Split(*script, "\n")
	}
	res, err := emulator.Run(ctx, job)
	if err != nil {
		return err
	}
	fmt.Printf("\ndemo: job %s in %.1fs\n", res.Outcome, time.Since(started).Seconds())
	if res.Outcome.Kind != runner.OutcomeSuccess {
		return fmt.Errorf("the job did not succeed: %s", res.Outcome)
	}
	return nil
}
