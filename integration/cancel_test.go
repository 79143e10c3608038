package integration

import (
	"testing"
	"time"

	"gitlab.com/dind-executor/dind-executor/integration/runner"
)

// A job cancelled at any point leaves nothing behind: during prepare (the
// half-made sandbox goes with cleanup), during a stage, and during cleanup
// itself (the signalled cleanup goes on removing within its grace).
func TestNothingLeftAfterACancelAtAnyPoint(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		script string
		opt    runner.RunOption
	}{
		{"during prepare", "sleep 300", runner.AbortDuringStage("prepare", 1500*time.Millisecond)},
		{"during a stage", "sleep 300", runner.CancelDuringStage("build_script", time.Second)},
		{"during cleanup", "echo done", runner.CancelDuringStage("cleanup", 100*time.Millisecond)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			job := simpleJob(tc.script)
			e := newEmulator(t, seedConfig())
			e.GracefulKillTimeout = 30 * time.Second
			res := runJob(t, e, job, tc.opt)
			if !res.CancelFired[0] {
				t.Fatalf("the cancel did not fire %s", tc.name)
			}
			for _, x := range res.Execs {
				if x.Ended == runner.EndedKilled {
					t.Errorf("%s %s had to be killed: it did not end by itself after SIGTERM", x.Kind, x.Stage)
				}
			}
			assertHooksBounded(t, res)
			assertJobLeftNothing(t, job.ID)
		})
	}
}

// The runner's own job timeout takes the cancel's path: the stage's
// processes are stopped inside the sandbox, the run hook exits by itself
// right after its SIGTERM, and cleanup leaves nothing.
func TestJobTimeoutEndsLikeACancel(t *testing.T) {
	t.Parallel()
	job := simpleJob("sleep 300")
	e := newEmulator(t, seedConfig())
	e.GracefulKillTimeout = 30 * time.Second
	// Long enough for prepare on a loaded CI machine (20 s was not): the
	// timeout must fall in the stage.
	res := runJob(t, e, job, runner.JobTimeout(45*time.Second))
	if res.Outcome.Kind != runner.OutcomeTimedOut {
		t.Fatalf("outcome = %s, want timed out", res.Outcome)
	}
	assertStoppedPromptly(t, lastExec(res, "build_script"))
	assertHooksBounded(t, res)
	assertJobLeftNothing(t, job.ID)
}

// assertStoppedPromptly checks a run hook that got SIGTERM while its stage
// ran. Not a speed check (the bench measures that): a hook that waits on
// anything once its stage died, such as an inquest into a killed stage
// (3 s), ends past this bound.
func assertStoppedPromptly(t *testing.T, x runner.Exec) {
	t.Helper()
	if x.Ended != runner.EndedTerminated {
		t.Fatalf("%s ended %q, want it to exit by itself after SIGTERM", x.Stage, x.Ended)
	}
	t.Logf("run hook exited %s after SIGTERM", x.TermToExit)
	if x.TermToExit > 2*time.Second {
		t.Errorf("run hook took %s to exit after SIGTERM though its stage died at once", x.TermToExit)
	}
}
