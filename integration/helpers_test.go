package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// newJobID gives each test its own job id, so label queries see only its objects.
func newJobID() int64 { return 1_000_000 + rand.Int64N(1_000_000_000) }

// writeConfig stores a dind-executor config for one test.
func writeConfig(t *testing.T, toml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// newEmulator plays GitLab Runner against the built binary with config toml.
// The job log is kept and printed when the test fails.
func newEmulator(t *testing.T, toml string) *runner.Emulator {
	t.Helper()
	return &runner.Emulator{
		Binary:               env.binary,
		Args:                 []string{"--config", writeConfig(t, toml)},
		PrepareRetryInterval: 100 * time.Millisecond,
	}
}

// runJob runs job and logs the job log if the test fails.
func runJob(t *testing.T, e *runner.Emulator, job runner.Job, opts ...runner.RunOption) *runner.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := e.Run(ctx, job, opts...)
	if err != nil {
		t.Fatalf("runner emulator: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("job log of job %d:\n%s\nrunner log:\n%s", job.ID, runner.PlainText(res.Log), res.RunnerLog)
		}
	})
	return res
}

func dockerAPI(t *testing.T) *client.Client {
	t.Helper()
	api, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	return api
}

// assertNothingLeft fails when any container, volume or network carries
// the label; every test ends with it.
func assertNothingLeft(t *testing.T, label, value string) {
	t.Helper()
	api := dockerAPI(t)
	ctx := context.Background()
	f := client.Filters{}.Add("label", label+"="+value)
	containers, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	volumes, err := api.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	networks, err := api.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(containers.Items) + len(volumes.Items) + len(networks.Items); n > 0 {
		var names []string
		for _, c := range containers.Items {
			names = append(names, c.Names...)
		}
		for _, v := range volumes.Items {
			names = append(names, v.Name)
		}
		for _, n := range networks.Items {
			names = append(names, n.Name)
		}
		t.Errorf("%d objects labelled %s=%s left behind: %v", n, label, value, names)
	}
}

func assertJobLeftNothing(t *testing.T, jobID int64) {
	t.Helper()
	assertNothingLeft(t, executor.LabelJobID, strconv.FormatInt(jobID, 10))
}

// seedConfig is the config every job test starts from.
func seedConfig() string { return seedjob.Config(env.repoDir) }

// withReadyTimeout is a seed config (or one made from it) with another
// [sandbox] ready_timeout.
func withReadyTimeout(t *testing.T, toml, timeout string) string {
	t.Helper()
	line := fmt.Sprintf("ready_timeout = %q", seedjob.ReadyTimeout)
	if !strings.Contains(toml, line) {
		t.Fatalf("the config has no %s line to replace:\n%s", line, toml)
	}
	return strings.Replace(toml, line, fmt.Sprintf("ready_timeout = %q", timeout), 1)
}

// simpleJob is a job with the given script on the seed repository.
func simpleJob(script ...string) runner.Job {
	job := seedjob.Job(newJobID(), env.repoSHA)
	job.Script = script
	job.AfterScript = []string{"echo after_script ran with status $CI_JOB_STATUS"}
	return job
}

// buildImage builds a one-Dockerfile image from local images only, tags it
// uniquely for the test and removes it afterwards.
func buildImage(t *testing.T, dockerfile string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(dockerfile)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buildContext(t, &buf)
}

// buildContext builds an image from a tar build context, tags it uniquely
// for the test and removes it, with the build's intermediate images,
// afterwards.
func buildContext(t *testing.T, tarball io.Reader) string {
	t.Helper()
	tag := "dind-executor.local/test-" + strconv.FormatInt(newJobID(), 36) + ":test"
	api := dockerAPI(t)
	ctx := context.Background()
	res, err := api.ImageBuild(ctx, tarball, client.ImageBuildOptions{
		Tags: []string{tag}, Remove: true, ForceRemove: true, NetworkMode: "none",
		NoCache: true, Labels: map[string]string{testImageLabel: ownImages(t)},
	})
	if err != nil {
		t.Fatalf("build %s: %v", tag, err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if _, err := api.ImageInspect(ctx, tag); err != nil {
		t.Fatalf("build %s: %v\n%s", tag, err, out)
	}
	return tag
}

// stdcopyAll demultiplexes a non-TTY container stream into one writer.
func stdcopyAll(w io.Writer, r io.Reader) (int64, error) { return stdcopy.StdCopy(w, w, r) }

// execInContainer runs cmd in a container as user through the Engine API
// and returns its exit code and combined output. It never stops the test,
// so it can run in the emulator's goroutine.
func execInContainer(api *client.Client, containerName, user string, cmd ...string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created, err := api.ExecCreate(ctx, containerName, client.ExecCreateOptions{User: user, Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return 0, "", fmt.Errorf("exec in %s: %w", containerName, err)
	}
	attached, err := api.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return 0, "", fmt.Errorf("attach exec in %s: %w", containerName, err)
	}
	var out bytes.Buffer
	_, _ = stdcopyAll(&out, attached.Reader)
	attached.Close()
	res, err := api.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
	if err != nil {
		return 0, "", fmt.Errorf("inspect exec in %s: %w", containerName, err)
	}
	return res.ExitCode, out.String(), nil
}

// BuildKit's plain progress output (`docker build` with buildx installed,
// `docker buildx build`): "#N [stage i/n] INSTRUCTION" names step N, and
// "#N CACHED" says it came from a cache.
var (
	buildkitStepLine   = regexp.MustCompile(`(?m)^#(\d+) (\[.*)$`)
	buildkitCachedLine = regexp.MustCompile(`(?m)^#(\d+) CACHED$`)
)

// stepCached reports whether the one BuildKit build in log has a step whose
// name starts with prefix, and whether that step came from a cache.
func stepCached(log, prefix string) (found, cached bool) {
	for _, step := range buildkitStepLine.FindAllStringSubmatch(log, -1) {
		if strings.HasPrefix(step[2], prefix) {
			for _, c := range buildkitCachedLine.FindAllStringSubmatch(log, -1) {
				if c[1] == step[1] {
					return true, true
				}
			}
			return true, false
		}
	}
	return false, false
}

// seedRunStep is the seed Dockerfile's RUN step: the step to watch for the
// cache, since BuildKit shows a COPY as CACHED even in a cold build when
// the same COPY already ran in another stage.
const seedRunStep = "[builder 4/4] RUN"

// toolchainStep and sourcesStep are the seed Dockerfile's two COPY steps of
// its builder stage, before the RUN.
const (
	toolchainStep = "[builder 1/4] COPY busybox"
	sourcesStep   = "[builder 3/4] COPY src/"
)
