package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// A runner in a container, deployed as GitLab documents it first: on the
// default bridge (no --network host) with the Engine's socket mounted.
// The executor runs there and never routes to a job bridge, so everything
// it does with a sandbox's daemon and services must go through the Engine.
// The runner emulator stands in for gitlab-runner inside the container and
// drives the seed job; paths the sandbox binds are shared with the host at
// the same place, as an operator's volumes must be.
func TestRunnerInAContainerDrivesTheSeedJob(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	demo := filepath.Join(dir, "demo")
	build := exec.Command("go", "build", "-o", demo, "./demo")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the demo: %v\n%s", err, out)
	}
	api := dockerAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	created, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: "dind-executor-test-runner-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		Config: &container.Config{
			Image:  seedjob.JobImage,
			Cmd:    []string{demo, "-binary", env.binary, "-work", dir},
			Labels: map[string]string{"io.dind-executor.test.runner": "true"},
		},
		HostConfig: &container.HostConfig{
			Binds: []string{"/var/run/docker.sock:/var/run/docker.sock", dir + ":" + dir, env.binary + ":" + env.binary + ":ro"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = api.ContainerRemove(context.Background(), created.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	})
	if _, err := api.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	waited := api.ContainerWait(ctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	var exitCode int64
	select {
	case res := <-waited.Result:
		exitCode = res.StatusCode
	case err := <-waited.Error:
		t.Fatalf("wait for the runner container: %v", err)
	}
	logs, err := api.ContainerLogs(ctx, created.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	_, _ = stdcopyAll(&out, logs)
	logs.Close()
	text := out.String()
	inspected, err := api.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mode := inspected.Container.HostConfig.NetworkMode; mode.IsHost() {
		t.Fatalf("the runner container runs with network mode %s, want the default bridge", mode)
	}
	if exitCode != 0 || !strings.Contains(text, "demo: job success") || !strings.Contains(text, "Starting TLS daemon... ready in") {
		t.Fatalf("the runner in a container: exit %d, want a successful job; its output:\n%s", exitCode, text)
	}
	m := regexp.MustCompile(`for job (\d+) `).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no job id in the output:\n%s", text)
	}
	jobID, _ := strconv.ParseInt(m[1], 10, 64)
	assertJobLeftNothing(t, jobID)
}
