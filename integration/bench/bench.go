package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// bench is what every section gets; it does not change once set up.
type bench struct {
	opts    options
	inv     *invocation
	api     *client.Client
	product *product
	seedSHA string // the seed repository's commit, under product.mountDir/seed
	root    string // the module's root: its sources are the runner image's
	log     *progress
}

// seedRepoDir is the seed repository's folder under the mount.
const seedRepoDir = "seed"

// newBench checks the Engine and the images, builds the binary (unless
// -binary names one) into the invocation's temp dir, and writes the seed
// repository and the config. close removes the temp dir.
func newBench(ctx context.Context, opts options, log *progress) (b *bench, closeFn func(), err error) {
	b = &bench{opts: opts, inv: newInvocation(), log: log}
	if b.root, err = moduleRoot(); err != nil {
		return nil, nil, err
	}
	if _, err := exec.LookPath("docker"); err != nil {
		return nil, nil, fmt.Errorf("the docker CLI (the stage and output baselines) is not on PATH: %w", err)
	}
	if b.api, err = client.New(client.FromEnv); err != nil {
		return nil, nil, fmt.Errorf("Engine client: %w", err)
	}
	if err := checkEngine(ctx, b.api); err != nil {
		b.api.Close()
		return nil, nil, err
	}
	work, err := os.MkdirTemp("", "dind-executor-bench")
	if err != nil {
		b.api.Close()
		return nil, nil, fmt.Errorf("work dir: %w", err)
	}
	closeFn = func() {
		_ = os.RemoveAll(work)
		b.api.Close()
	}
	if err := b.prepareProduct(ctx, work); err != nil {
		closeFn()
		return nil, nil, err
	}
	log.printf("tag %d: work dir %s, binary %s", b.inv.tag, work, b.product.binary)
	return b, closeFn, nil
}

// checkEngine fails with what to run when the Engine or an image is missing.
func checkEngine(ctx context.Context, api *client.Client) error {
	if _, err := api.ServerVersion(ctx, client.ServerVersionOptions{}); err != nil {
		return fmt.Errorf("no Docker Engine answers (%w): run `make setup` first", err)
	}
	for _, image := range []string{seedjob.DaemonImage, seedjob.JobImage, seedjob.HelperImage} {
		if _, err := api.ImageInspect(ctx, image); err != nil {
			return fmt.Errorf("image %s is missing (%w): run `make setup` (integration/images/build.sh) first", image, err)
		}
	}
	return nil
}

func (b *bench) prepareProduct(ctx context.Context, work string) error {
	binary := b.opts.binary
	if binary == "" {
		binary = filepath.Join(work, "dind-executor")
		b.log.printf("building ./cmd/dind-executor")
		build := exec.CommandContext(ctx, "go", "build", "-o", binary, "./cmd/dind-executor")
		build.Dir = b.root
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/dind-executor: %w\n%s", err, out)
		}
	}
	var err error
	if b.product, err = newProduct(binary, work); err != nil {
		return err
	}
	if b.seedSHA, err = seedjob.WriteRepo(filepath.Join(b.product.mountDir, seedRepoDir)); err != nil {
		return fmt.Errorf("seed repository: %w", err)
	}
	return nil
}

// moduleRoot is the repository's root, found from the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module gitlab.com/dind-executor/dind-executor\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the bench from the dind-executor repository (go run ./integration/bench)")
		}
		dir = parent
	}
}
