// Command bench measures dind-executor on the local Docker Engine against
// the docker executor's way of doing the same thing (a docker:dind service
// with TLS, the docker CLI), in one invocation, and checks the figures
// against their targets. See README.md in this folder.
//
//	go run ./integration/bench            # full run, a few minutes
//	go run ./integration/bench -quick     # smoke run
//	go run ./integration/bench -json      # machine-readable report on stdout
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// section measures some rows and adds them to the report.
type section func(ctx context.Context, b *bench, rep *Report) error

// sections in run order; each returns at once unless -only selects it.
var sections = []struct {
	name string
	run  section
}{
	{"prepare and cleanup", prepareSection},
	{"daemon profiles", profilesSection},
	{"pool", poolSection},
	{"stage", stageSection},
	{"output", outputSection},
	{"job", jobSection},
	{"seed", seedSection},
	{"runner image", runnerImageSection},
	{"concurrent", concurrentSection},
	{"cancel", cancelSection},
	{"hosts", hostsSection},
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	opts, err := parseOptions(args)
	if err != nil {
		return err
	}
	if opts.render != "" {
		return render(opts.render, os.Stdout)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	log := &progress{out: os.Stderr}
	b, closeBench, err := newBench(ctx, opts, log)
	if err != nil {
		return err
	}
	defer closeBench()
	rep := &Report{Runs: opts.runs, Quick: opts.quick, Machine: describeMachine(ctx, b.api, b.root)}
	err = runSections(ctx, b, rep)
	// Whatever happened, nothing of this invocation stays on the Engine.
	swept := sweep(ctx, b.api, b.inv)
	if err != nil {
		warnFailed(swept)
		return err
	}
	log.printf("done")
	addSweep(rep, swept)
	rep.Machine.LoadEnd = loadAvg()
	return output(rep, opts)
}

func runSections(ctx context.Context, b *bench, rep *Report) error {
	b.log.begin()
	for _, s := range sections {
		if err := s.run(ctx, b, rep); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// addSweep says in the report what the final sweep found.
func addSweep(rep *Report, res sweepResult) {
	rep.Leftovers = res.sandboxLeft
	if len(res.expected) > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("removed at the end, as expected: %s", strings.Join(res.expected, ", ")))
	}
	if len(res.failed) > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("WARNING: could not remove (remove them by hand): %s", strings.Join(res.failed, "; ")))
	}
}

func warnFailed(res sweepResult) {
	if len(res.failed) > 0 {
		fmt.Fprintf(os.Stderr, "bench: WARNING: could not remove: %s\n", strings.Join(res.failed, "; "))
	}
}

// output prints the report as tables or JSON, and saves the JSON if asked.
func output(rep *Report, opts options) error {
	if opts.jsonFile != "" {
		f, err := os.Create(opts.jsonFile)
		if err != nil {
			return fmt.Errorf("JSON report file: %w", err)
		}
		if err := errors.Join(rep.writeJSON(f), f.Close()); err != nil {
			return fmt.Errorf("write %s: %w", opts.jsonFile, err)
		}
	}
	if opts.json {
		return rep.writeJSON(os.Stdout)
	}
	rep.writeText(os.Stdout)
	return nil
}
