// Package integration runs dind-executor end to end against a real Docker
// Engine: the built binary driven by the runner emulator, and the executor
// package's sandboxes probed from the host and from inside. A missing
// Engine or image fails the suite: `make setup` provides both.
package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// suite holds what TestMain prepares once for every test.
type suite struct {
	binary  string // the built dind-executor
	repoDir string // the seed job's git repository
	repoSHA string
}

var env suite // set once by TestMain before any test runs, read-only after

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	work, err := os.MkdirTemp("", "dind-executor-integration")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(work)

	if err := checkEngine(); err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	env.binary = filepath.Join(work, "dind-executor")
	// Static, as released (it is also the plain endpoint's relay), and
	// -trimpath as the Dockerfile builds it: its compiled packages then
	// serve that build too (goBuildCache).
	build := exec.Command("go", "build", "-trimpath", "-o", env.binary, "../cmd/dind-executor")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: build dind-executor: %v\n%s", err, out)
		return 1
	}
	env.repoDir = filepath.Join(work, "repo")
	if env.repoSHA, err = seedjob.WriteRepo(env.repoDir); err != nil {
		fmt.Fprintln(os.Stderr, "integration: seed repository:", err)
		return 1
	}
	code := m.Run()
	// The seed project's runner cache outlives its jobs by design; the
	// suite's own goes with it.
	if err := removeSeedCaches(); err != nil {
		fmt.Fprintln(os.Stderr, "integration: remove the seed project's cache volumes:", err)
	}
	return code
}

func removeSeedCaches() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	api, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	defer api.Close()
	project := client.Filters{}.Add("label", executor.LabelProjectPath+"="+seedjob.Job(1, "").ProjectPath)
	markers, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: project.Clone().
		Add("label", executor.LabelRole+"="+string(executor.RoleLastUse))})
	if err != nil {
		return err
	}
	for _, c := range markers.Items {
		// RemoveVolumes: the marker's image may declare a VOLUME.
		if _, err := api.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			return err
		}
	}
	// Only the project's cache volumes (they carry its key, no sandbox):
	// a sandbox's own volumes go with it, and one still in use belongs to
	// a job that is not this run's.
	vols, err := api.VolumeList(ctx, client.VolumeListOptions{Filters: project.Clone().Add("label", executor.LabelProjectKey)})
	if err != nil {
		return err
	}
	for _, v := range vols.Items {
		if _, err := api.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsConflict(err) {
			return err
		}
	}
	return nil
}

// checkEngine fails fast, with the fix, when the suite cannot run.
func checkEngine() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	api, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	defer api.Close()
	if _, err := api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return fmt.Errorf("no Docker Engine answers (%v): run `make setup` (integration/setup-engine.sh) first", err)
	}
	for _, image := range []string{seedjob.DaemonImage, seedjob.JobImage, seedjob.HelperImage} {
		if _, err := api.ImageInspect(ctx, image); err != nil {
			return fmt.Errorf("image %s is missing (%v): run `make setup` (integration/images/build.sh) first", image, err)
		}
	}
	return nil
}
