package integration

import (
	"slices"
	"strings"
	"testing"
	"time"

	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// The seed article's job: docker info, a multi-stage build and a run of
// the result, all against the sandbox's daemon over mutual TLS.
func TestSeedJobBuildsAndRunsMultiStageImage(t *testing.T) {
	t.Parallel()
	job := seedjob.Job(newJobID(), env.repoSHA)
	res := runJob(t, newEmulator(t, seedConfig()), job)

	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	wantStages := []string{"prepare_script", "get_sources", "build_script", "after_script", "cleanup_file_variables"}
	if got := res.RunStages(); !slices.Equal(got, wantStages) {
		t.Errorf("stages = %v, want %v", got, wantStages)
	}
	log := runner.PlainText(res.Log)
	for _, want := range []string{
		"Starting TLS daemon... ready in",
		"Service docker:27-dind: provided by the sandbox's own daemon",
		"inner daemon ", // docker info over TCP+TLS answered
		// BuildKit (the job image has buildx, as docker:cli does) builds
		// the second, slim stage by copying from the builder stage.
		"[stage-1 1/2] COPY --from=builder",
		"naming to docker.io/library/my-app:" + job.SHA, // the build finished
		seedjob.AppGreeting + " (version 1.0.0)",        // the built image ran
		"after_script ran",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("job log lacks %q", want)
		}
	}
	assertJobLeftNothing(t, job.ID)
}

// A script failing with exit 42 is a build failure carrying 42; the
// runner still runs after_script, and cleanup removes the sandbox.
func TestFailingScriptIsBuildFailureWithItsExitCode(t *testing.T) {
	t.Parallel()
	job := simpleJob("echo about to fail", "exit 42", "echo never printed")
	res := runJob(t, newEmulator(t, seedConfig()), job)

	if res.Outcome.Kind != runner.OutcomeBuildFailure || res.Outcome.ExitCode != 42 {
		t.Fatalf("outcome = %s, want build failure with exit code 42", res.Outcome)
	}
	var build *runner.Exec
	for i := range res.Execs {
		if res.Execs[i].Stage == "build_script" {
			build = &res.Execs[i]
		}
	}
	if build == nil || build.ExitCode != 1 || build.BuildExitCode != 42 {
		t.Fatalf("build_script exec = %+v, want driver exit 1 and 42 in BUILD_EXIT_CODE_FILE", build)
	}
	log := runner.PlainText(res.Log)
	if !strings.Contains(log, "after_script ran with status failed") {
		t.Error("after_script did not run with CI_JOB_STATUS=failed")
	}
	if strings.Contains(log, "\nnever printed") {
		t.Error("the script went on after exit 42")
	}
	assertJobLeftNothing(t, job.ID)
}

// Runners before 17 send build_script, later ones may send step_script:
// both run the user script in the build container.
func TestStepScriptStageName(t *testing.T) {
	t.Parallel()
	job := simpleJob("echo stage-name-ok in $(cat /etc/hostname | cut -c1-3)", "test -n \"$DOCKER_HOST\"")
	res := runJob(t, newEmulator(t, seedConfig()), job, runner.WithUserStageName("step_script"))
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	if !slices.Contains(res.RunStages(), "step_script") {
		t.Errorf("stages %v: step_script was not sent", res.RunStages())
	}
	if !strings.Contains(runner.PlainText(res.Log), "stage-name-ok") {
		t.Error("the step_script stage did not run the script")
	}
	assertJobLeftNothing(t, job.ID)
}

// A cancel (SIGTERM to the run hook's process group) stops the stage's
// processes inside the sandbox; the hook exits on its own, well before the
// runner would escalate, after_script runs, and nothing is left.
func TestCancelStopsTheStageInsideTheSandbox(t *testing.T) {
	t.Parallel()
	job := simpleJob("echo sleeping", "sleep 300")
	e := newEmulator(t, seedConfig())
	e.GracefulKillTimeout = 30 * time.Second
	res := runJob(t, e, job, runner.CancelDuringStage("build_script", 2*time.Second))

	if !slices.Equal(res.CancelFired, []bool{true}) {
		t.Fatalf("the cancel did not fire during build_script: %v", res.CancelFired)
	}
	assertStoppedPromptly(t, lastExec(res, "build_script"))
	if !strings.Contains(runner.PlainText(res.Log), "after_script ran with status canceled") {
		t.Error("after_script did not run with CI_JOB_STATUS=canceled")
	}
	assertJobLeftNothing(t, job.ID)
}
