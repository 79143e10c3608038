package integration

import (
	"strings"
	"testing"

	"gitlab.com/dind-executor/dind-executor/integration/runner"
)

// A dind service written any way the field writes it (a mirror's path, an
// alias of its own) is the sandbox's daemon, reachable over mutual TLS
// under every name the service declares; the build container answers as
// build on the job network, as under the docker executor's network per
// build.
func TestDinDServiceAnswersUnderItsAliases(t *testing.T) {
	t.Parallel()
	job := simpleJob(
		"docker info --format 'as dockerd: {{.ServerVersion}}'",
		"DOCKER_HOST=tcp://registry.example.com-mirror-docker:2376 docker info --format 'as the mirror path: {{.ServerVersion}}'",
		"DOCKER_HOST=tcp://docker:2376 docker info --format 'as docker: {{.ServerVersion}}'",
		"getent hosts build && echo build resolves",
	)
	job.Services = []runner.Image{{Name: "registry.example.com/mirror/docker:27-dind", Alias: "dockerd"}}
	job.Variables = append(job.Variables, runner.Var("DOCKER_HOST", "tcp://dockerd:2376"))
	res := runJob(t, newEmulator(t, seedConfig()), job)
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	log := runner.PlainText(res.Log)
	for _, want := range []string{"as dockerd: ", "as the mirror path: ", "as docker: ", "build resolves",
		"provided by the sandbox's own daemon as [docker registry.example.com__mirror__docker registry.example.com-mirror-docker dockerd]"} {
		if !strings.Contains(log, want) {
			t.Errorf("job log lacks %q", want)
		}
	}
	assertJobLeftNothing(t, job.ID)
}

// A rootless dind service is refused with what to change, never silently
// served by a rootful daemon.
func TestRootlessDinDServiceIsRefused(t *testing.T) {
	t.Parallel()
	job := simpleJob("echo never")
	job.Services = []runner.Image{{Name: "docker:27-dind-rootless"}}
	e := newEmulator(t, seedConfig())
	e.PrepareAttempts = 1
	res := runJob(t, e, job)
	if res.Outcome.Kind != runner.OutcomeSystemFailure || !strings.Contains(res.Log, "asks for a rootless Docker daemon") {
		t.Fatalf("outcome %s; log:\n%s", res.Outcome, runner.PlainText(res.Log))
	}
	assertJobLeftNothing(t, job.ID)
}
