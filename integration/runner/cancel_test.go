package runner

import (
	"strings"
	"testing"
	"time"
)

func sleepingJob() Job {
	j := basicJob()
	j.Script = []string{"echo sleeping", "sleep 30", "echo woke"}
	j.AfterScript = []string{"echo after status=$CI_JOB_STATUS"}
	j.Cache = []Cache{{Key: "k", Paths: []string{"c/"}, When: "always"}}
	return j
}

func TestCancelDuringBuildScript(t *testing.T) {
	h := newHarness(t)
	start := time.Now()
	res := h.run(sleepingJob(), CancelDuringStage("build_script", 300*time.Millisecond))
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("job took %v", took)
	}
	if !res.CancelFired[0] {
		t.Fatal("cancel did not fire")
	}
	if res.Outcome.Kind != OutcomeCanceled {
		t.Errorf("outcome %v, want canceled", res.Outcome)
	}
	equalStrings(t, "sequence", res.Sequence(), []string{"config", "prepare", "run:prepare_script", "run:get_sources",
		"run:restore_cache", "run:build_script", "run:after_script", "run:archive_cache_on_failure",
		"run:cleanup_file_variables", "cleanup"})

	x := res.Exec("build_script")
	if x.Ended != EndedTerminated || x.TermToExit <= 0 || x.TermToExit > 3*time.Second {
		t.Errorf("build_script ended %s after SIGTERM in %v, want terminated promptly", x.Ended, x.TermToExit)
	}
	rs := h.records()
	if r := recordFor(t, rs, "run:build_script"); !r.GotSIGTERM || !r.Finished {
		t.Errorf("driver: got SIGTERM %v finished %v", r.GotSIGTERM, r.Finished)
	}
	if got := recordFor(t, rs, "run:after_script").EnvMap()["CUSTOM_ENV_CI_JOB_STATUS"]; got != "canceled" {
		t.Errorf("after_script CI_JOB_STATUS = %q, want canceled", got)
	}
	plain := PlainText(res.Log)
	for _, want := range []string{"after status=canceled\n", "WARNING: script canceled externally (UI, API)\n"} {
		if !strings.Contains(plain, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(plain, "\nwoke\n") {
		t.Errorf("script continued after cancel")
	}
	assertGone(t, res.TempDirs...)
}

// TestCancelEscalatesToSIGKILL: a driver that ignores SIGTERM gets SIGKILL
// after GracefulKillTimeout, sent to its whole process group.
func TestCancelEscalatesToSIGKILL(t *testing.T) {
	h := newHarness(t)
	h.e.GracefulKillTimeout = 700 * time.Millisecond
	job := sleepingJob()
	job.Variables = append(job.Variables, Var("FAKE_HANG_STAGE", "build_script"), Var("FAKE_IGNORE_TERM", "build_script"))
	res := h.run(job, CancelDuringStage("step_script", 200*time.Millisecond))

	x := res.Exec("build_script")
	if x.Ended != EndedKilled || x.Signal != "killed" || x.ExitCode != -1 {
		t.Errorf("build_script ended %s signal %q exit %d, want killed by SIGKILL", x.Ended, x.Signal, x.ExitCode)
	}
	if x.TermToExit < 700*time.Millisecond || x.TermToExit > 5*time.Second {
		t.Errorf("SIGTERM→exit %v, want about GracefulKillTimeout", x.TermToExit)
	}
	if x.Failure != FailureUnknown {
		t.Errorf("failure %q, want unknown (death by signal)", x.Failure)
	}
	r := recordFor(t, h.records(), "run:build_script")
	if r.Finished || r.GotSIGTERM {
		t.Errorf("driver should have died without finishing: %+v", r.Finished)
	}
	if r.ChildPID == 0 {
		t.Fatal("fake driver recorded no child")
	}
	deadline := time.Now().Add(2 * time.Second)
	for !processGone(r.ChildPID) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !processGone(r.ChildPID) {
		t.Errorf("child %d of the driver survived: SIGKILL did not reach the process group", r.ChildPID)
	}
	if res.Outcome.Kind != OutcomeCanceled {
		t.Errorf("outcome %v", res.Outcome)
	}
	if res.Exec("after_script") == nil {
		t.Errorf("after_script did not run: %v", res.Sequence())
	}
}

func TestJobTimeoutSkipsLaterStages(t *testing.T) {
	h := newHarness(t)
	res := h.run(sleepingJob(), JobTimeout(3*time.Second))
	if res.Outcome.Kind != OutcomeTimedOut {
		t.Errorf("outcome %v, want timed out", res.Outcome)
	}
	equalStrings(t, "sequence", res.Sequence(), []string{"config", "prepare", "run:prepare_script", "run:get_sources",
		"run:restore_cache", "run:build_script", "cleanup"})
	equalStrings(t, "skipped", res.Skipped, []string{"after_script", "archive_cache_on_failure", "cleanup_file_variables"})
	if x := res.Exec("build_script"); x.Ended != EndedTerminated {
		t.Errorf("build_script ended %s", x.Ended)
	}
	if !strings.Contains(res.Log, "ERROR: Job failed: execution took longer than 3s seconds") {
		t.Errorf("log tail: %q", res.Log[max(0, len(res.Log)-200):])
	}
	assertGone(t, res.TempDirs...)
}

func TestAbortDuringGetSources(t *testing.T) {
	h := newHarness(t)
	job := sleepingJob()
	job.Variables = append(job.Variables, Var("FAKE_HANG_STAGE", "get_sources"))
	res := h.run(job, AbortDuringStage("get_sources", 200*time.Millisecond))
	equalStrings(t, "sequence", res.Sequence(), []string{"config", "prepare", "run:prepare_script", "run:get_sources", "cleanup"})
	if res.Outcome.Kind != OutcomeCanceled || res.Outcome.Message != "aborted" {
		t.Errorf("outcome %+v", res.Outcome)
	}
	if r := recordFor(t, h.records(), "run:get_sources"); !r.GotSIGTERM {
		t.Errorf("get_sources did not get SIGTERM")
	}
}

// A cancel before the user scripts hits the whole job, like an abort.
func TestCancelDuringPrepareScriptActsLikeAbort(t *testing.T) {
	h := newHarness(t)
	job := sleepingJob()
	job.Variables = append(job.Variables, Var("FAKE_HANG_STAGE", "prepare_script"))
	res := h.run(job, CancelDuringStage("prepare_script", 200*time.Millisecond))
	equalStrings(t, "sequence", res.Sequence(), []string{"config", "prepare", "run:prepare_script", "cleanup"})
	if res.Outcome.Kind != OutcomeCanceled {
		t.Errorf("outcome %v", res.Outcome)
	}
}

// A cancel after the user scripts has no effect.
func TestCancelDuringAfterScriptHasNoEffect(t *testing.T) {
	h := newHarness(t)
	job := basicJob()
	job.AfterScript = []string{"sleep 1", "echo after-done"}
	res := h.run(job, CancelDuringStage("after_script", 200*time.Millisecond))
	if !res.CancelFired[0] {
		t.Fatal("cancel did not fire")
	}
	if res.Outcome.Kind != OutcomeSuccess || !strings.Contains(res.Log, "after-done") {
		t.Errorf("outcome %v; after_script must finish", res.Outcome)
	}
}

func TestCancelAfterStageFinishedDoesNotFire(t *testing.T) {
	h := newHarness(t)
	res := h.run(basicJob(), CancelDuringStage("prepare_script", 10*time.Second))
	if res.CancelFired[0] || res.Outcome.Kind != OutcomeSuccess {
		t.Errorf("fired %v, outcome %v", res.CancelFired[0], res.Outcome)
	}
}

func TestScriptTimeout(t *testing.T) {
	h := newHarness(t)
	job := sleepingJob()
	job.Variables = append(job.Variables, Var("RUNNER_SCRIPT_TIMEOUT", "1s"))
	res := h.run(job)
	if res.Outcome.Kind != OutcomeTimedOut {
		t.Errorf("outcome %v", res.Outcome)
	}
	if got := recordFor(t, h.records(), "run:after_script").EnvMap()["CUSTOM_ENV_CI_JOB_STATUS"]; got != "timedout" {
		t.Errorf("after_script CI_JOB_STATUS %q, want timedout", got)
	}
	if res.Exec("archive_cache_on_failure") == nil {
		t.Errorf("archive_cache_on_failure did not run: %v", res.Sequence())
	}
}

func TestAbortDuringPrepareStopsRetries(t *testing.T) {
	h := newHarness(t)
	job := basicJob()
	job.Variables = append(job.Variables, Var("FAKE_PREPARE_EXIT", "2"))
	h.e.PrepareRetryInterval = 5 * time.Second
	start := time.Now()
	res := h.run(job, AbortDuringStage("cleanup", 0))
	if time.Since(start) > 4*time.Second {
		t.Errorf("retry wait was not interrupted")
	}
	equalStrings(t, "sequence", res.Sequence(), []string{"config", "prepare", "cleanup"})
	if res.Outcome.Kind != OutcomeCanceled {
		t.Errorf("outcome %v", res.Outcome)
	}
}
