package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
	"gitlab.com/dind-executor/dind-executor/stages"
)

// tlsOffJob is the recipe of GitLab's own templates and very many
// pipelines: TLS turned off, the daemon at tcp://docker:2375.
func tlsOffJob(script ...string) runner.Job {
	job := simpleJob(script...)
	job.Services = []runner.Image{{Name: "docker:dind"}}
	job.Variables = append(job.Variables, runner.Var("DOCKER_HOST", "tcp://docker:2375"), runner.Var("DOCKER_TLS_CERTDIR", ""))
	return job
}

// The TLS-off recipe runs unchanged: port 2375 answers the build
// container, a port published by a container the job starts is reachable
// as docker:<port>, and the mutual-TLS endpoint still works beside it.
// While the job runs, nothing but the build container reaches port 2375:
// not the helper, not a service, not the daemon's address on the job
// network (where the helper and services are).
func TestTLSOffRecipeServesOnlyTheBuildContainer(t *testing.T) {
	t.Parallel()
	job := tlsOffJob(append([]string{"docker info --format 'plain endpoint: {{.ServerVersion}}'"}, publishedPortSteps()...)...)
	job.Services = append(job.Services, runner.Image{Name: seedjob.JobImage, Alias: "probe", Command: []string{"sleep", "600"}})
	api := dockerAPI(t)
	var once sync.Once
	var probed bool
	var probes []string
	res := runJob(t, newEmulator(t, seedConfig()), job, runner.OnExecStart(func(x runner.Exec, _ int) {
		if x.Stage == "step_script" || x.Stage == "build_script" {
			once.Do(func() { probes, probed = probePlainEndpoint(api, x.TempDir), true })
		}
	}))
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success; log:\n%s", res.Outcome, runner.PlainText(res.Log))
	}
	log := runner.PlainText(res.Log)
	for _, want := range []string{"plain endpoint: ", "published-port-answers", "mutual TLS beside it: ",
		"also answers plain tcp://docker:2375, to the build container only"} {
		if !strings.Contains(log, want) {
			t.Errorf("job log lacks %q", want)
		}
	}
	if !probed {
		t.Fatal("the plain endpoint was not probed while the job ran")
	}
	for _, p := range probes {
		t.Error(p)
	}
	assertJobLeftNothing(t, job.ID)
}

// probePlainEndpoint asks for the daemon's /_ping on port 2375 from every
// container of the sandbox and returns what answered when it must not
// have (or did not when it must).
// It runs in the emulator's goroutine: it reports, never stops the test.
func probePlainEndpoint(api *client.Client, runnerTempDir string) []string {
	hostname, _ := os.Hostname()
	id := executor.SandboxID(stages.SandboxID(hostname, filepath.Join(runnerTempDir, runner.JobResponseFileName)))
	daemon, err := api.ContainerInspect(context.Background(), id.Name(executor.RoleDaemon), client.ContainerInspectOptions{})
	if err != nil {
		return []string{fmt.Sprintf("inspect the daemon: %v", err)}
	}
	jobNet := daemon.Container.NetworkSettings.Networks[id.Name(executor.RoleNetwork)]
	if jobNet == nil || !jobNet.IPAddress.IsValid() {
		return []string{"the daemon has no address on the job network"}
	}
	var wrong []string
	ping := func(container, target string, wantAnswer bool) {
		code, out, err := execInContainer(api, container, "0", "curl", "-sS", "--max-time", "3", "http://"+target+":2375/_ping")
		if err != nil {
			wrong = append(wrong, err.Error())
			return
		}
		answered := code == 0 && strings.TrimSpace(out) == "OK"
		if answered != wantAnswer {
			wrong = append(wrong, fmt.Sprintf("%s -> %s:2375 answered=%v (want %v): exit %d %q", container, target, answered, wantAnswer, code, out))
		}
	}
	ping(id.Name(executor.RoleBuild), "docker", true)
	ping(id.Name(executor.RoleBuild), jobNet.IPAddress.String(), false)
	for _, c := range []string{id.Name(executor.RoleHelper), id.Name(executor.RoleService) + "-0"} {
		ping(c, "docker", false)
		ping(c, jobNet.IPAddress.String(), false)
	}
	return wrong
}

// An operator who refuses plain TCP gets the job failed at prepare, told
// exactly which variables to change.
func TestTLSOffRecipeRefusedWhenTheOperatorSaysSo(t *testing.T) {
	t.Parallel()
	job := tlsOffJob("echo never")
	e := newEmulator(t, strings.Replace(seedConfig(), "[sandbox]\n", "[sandbox]\nplain_tcp = \"refuse\"\n", 1))
	e.PrepareAttempts = 1
	res := runJob(t, e, job)
	log := runner.PlainText(res.Log)
	if res.Outcome.Kind == runner.OutcomeSuccess || !strings.Contains(log, "remove DOCKER_HOST and DOCKER_TLS_CERTDIR from the job's variables") {
		t.Fatalf("outcome %s; log:\n%s", res.Outcome, log)
	}
	assertJobLeftNothing(t, job.ID)
}

// publishedPortSteps build a busybox image in the job's daemon, serve a
// page from a container publishing port 8080, fetch it as docker:8080 (the
// log then holds "published-port-answers") and use the mutual-TLS endpoint
// ("mutual TLS beside it: ").
func publishedPortSteps() []string {
	return []string{
		busyboxImage("bb:1"),
		`docker run -d -p 8080:8080 bb:1 /bin/busybox sh -c '/bin/busybox mkdir /w && echo published-port-answers > /w/index.html && exec /bin/busybox httpd -f -p 8080 -h /w'`,
		"for i in $(seq 20); do curl -fsS http://docker:8080/ && break; sleep 0.5; done",
		"docker --tlsverify -H tcp://docker:2376 info --format 'mutual TLS beside it: {{.ServerVersion}}'",
	}
}
