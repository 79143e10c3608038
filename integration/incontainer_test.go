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

	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// A runner in a container, deployed as GitLab documents it first: on the
// default bridge (no --network host) with the Engine's socket mounted.
// ps, audit and gc work from inside it, and gc from the host keeps its
// live job.
// The executor runs there and never routes to a job bridge, so everything
// it does with a sandbox's daemon and services must go through the Engine.
// The runner emulator stands in for gitlab-runner inside the container and
// drives the seed job; paths the sandbox binds are shared with the host at
// the same place, as an operator's volumes must be.
func TestRunnerInAContainerDrivesTheSeedJob(t *testing.T) {
	t.Parallel()
	driveJobInRunnerContainer(t, seedjob.JobImage, env.binary, func(api *client.Client, runner, dir string) {
		sandbox := gcFromTheHostKeeps(t, api)
		operatorsInsideTheContainer(t, api, env.binary, runner, dir, sandbox)
	})
}

// driveJobInRunnerContainer starts image as an operator starts a runner
// container (default bridge, the Engine's socket, a work dir shared with
// the host at the same path) with the runner emulator (integration/demo)
// inside, driving a job through the dind-executor at binary (a path in
// the image, or env.binary, which is then mounted in). during runs while
// the job's stage sleeps. The job must succeed and leave nothing.
func driveJobInRunnerContainer(t *testing.T, image, binary string, during func(api *client.Client, runner, dir string)) {
	t.Helper()
	dir := t.TempDir()
	demo := filepath.Join(dir, "demo")
	build := exec.Command("go", "build", "-o", demo, "./demo")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the demo: %v\n%s", err, out)
	}
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	binds := []string{"/var/run/docker.sock:/var/run/docker.sock", dir + ":" + dir}
	if binary == env.binary {
		binds = append(binds, env.binary+":"+env.binary+":ro")
	}
	api := dockerAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	created, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: "dind-executor-test-runner-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		Config: &container.Config{
			Image:      image,
			Entrypoint: []string{demo},
			Cmd:        []string{"-binary", binary, "-work", dir, "-script", "sleep 12\ndocker version --format 'inner daemon {{.Server.Version}}'"},
			// The host's own name: gc on the host must still not take the
			// runner's temp dir, which is in the container, for its own.
			Hostname: hostname,
			Labels:   map[string]string{"io.dind-executor.test.runner": "true"},
		},
		HostConfig: &container.HostConfig{Binds: binds},
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
	if during != nil {
		during(api, created.ID, dir)
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
	if exitCode != 0 || !strings.Contains(text, "demo: job success") || !strings.Contains(text, "inner daemon ") {
		t.Fatalf("the runner in a container: exit %d, want a successful job; its output:\n%s", exitCode, text)
	}
	m := regexp.MustCompile(`for job (\d+) `).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no job id in the output:\n%s", text)
	}
	jobID, _ := strconv.ParseInt(m[1], 10, 64)
	assertJobLeftNothing(t, jobID)
}

// gcFromTheHostKeeps waits for the containerized runner's build container
// and runs gc on the host meanwhile: the job is live, so its sandbox stays.
func gcFromTheHostKeeps(t *testing.T, api *client.Client) (sandbox string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hostPIDNS, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		t.Fatal(err)
	}
	var build container.Summary
	for build.ID == "" {
		list, err := api.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.
			Add("label", executor.LabelRole+"="+string(executor.RoleBuild)).Add("label", executor.LabelProjectPath+"=seed/my-app")})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list.Items {
			// The one sandbox whose runner is in another pid namespace.
			if ns := c.Labels[executor.LabelOwnerPIDNS]; ns != "" && ns != hostPIDNS {
				build = c
			}
		}
		if build.ID == "" {
			select {
			case <-ctx.Done():
				t.Fatal("the containerized runner's sandbox never came up")
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	sandbox = build.Labels[executor.LabelSandbox]
	configPath := writeConfig(t, seedConfig())
	// If the test stops before the runner's own cleanup ran, its sandbox
	// goes here (then the runner container, registered before).
	t.Cleanup(func() { operator(t, configPath, "gc", "--sandbox", sandbox, "--older-than", "1ns") })
	res := operator(t, configPath, "gc", "--sandbox", sandbox)
	kept := regexp.MustCompile(`(?m)^keep +` + sandbox + ` `)
	if res.exitCode != 0 || !kept.MatchString(res.stdout) {
		t.Fatalf("gc on the host, during the containerized runner's job: exit %d\n%s%s", res.exitCode, res.stdout, res.stderr)
	}
	if _, err := api.ContainerInspect(ctx, build.ID, client.ContainerInspectOptions{}); err != nil {
		t.Fatalf("gc on the host removed a live job's build container: %v", err)
	}
	return sandbox
}

// operatorsInsideTheContainer runs the operator's commands where the
// runner is, while its job runs: ps lists the sandbox, audit shows its
// creation (the trail is the container's own file), gc keeps it (the
// runner and its temp dir are visible there).
func operatorsInsideTheContainer(t *testing.T, api *client.Client, binary, runnerContainer, dir, sandbox string) {
	t.Helper()
	configs, _ := filepath.Glob(filepath.Join(dir, "dind-executor-demo*", "config.toml"))
	if len(configs) != 1 {
		t.Fatalf("the demo's config in %s: found %v", dir, configs)
	}
	for _, c := range []struct {
		args []string
		want *regexp.Regexp
	}{
		{[]string{"ps", "--json"}, regexp.MustCompile(`"sandbox": "` + sandbox + `"`)},
		// Written once the daemon answers, after the build container exists.
		{[]string{"audit", "--json"}, regexp.MustCompile(`"event": "sandbox.created",\s+"sandbox": "` + sandbox + `"`)},
		{[]string{"gc", "--dry-run"}, regexp.MustCompile(`(?m)^keep +` + sandbox + ` .*running`)},
	} {
		var code int
		var out string
		var err error
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
			code, out, err = execInContainer(api, runnerContainer, "", append([]string{binary, "--config", configs[0]}, c.args...)...)
			if (err == nil && code == 0 && c.want.MatchString(out)) || time.Now().After(deadline) {
				break
			}
		}
		if err != nil || code != 0 || !c.want.MatchString(out) {
			t.Errorf("%v inside the runner container: exit %d, %v; want %s in:\n%s", c.args, code, err, c.want, out)
		}
	}
}
