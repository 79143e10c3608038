package runner

import (
	"strings"
	"testing"
)

// TestExitCodeMapping drives the build_script exec's exit code and
// BUILD_EXIT_CODE_FILE through every failure the runner distinguishes:
// exit 1 with the job's code on the file's first line (later lines are
// ignored, 1 when there is no file, a system failure when the line is not
// exactly a number), exit 2, and any other code.
func TestExitCodeMapping(t *testing.T) {
	tests := []struct {
		name        string
		vars        []Variable
		failure     FailureKind
		buildCode   int
		outcome     OutcomeKind
		exitCode    int
		messagePart string
	}{
		{"exit 1 with code file 42", []Variable{Var("FAKE_EXIT_CODE", "42")},
			FailureBuild, 42, OutcomeBuildFailure, 42, "exit status 42"},
		{"exit 1 without code file", nil,
			FailureBuild, 1, OutcomeBuildFailure, 1, "exit status 1"},
		{"code file with trailing lines", []Variable{{Key: "FAKE_EXIT_FILE", Value: "42\n\nTesting...", Raw: true}},
			FailureBuild, 42, OutcomeBuildFailure, 42, ""},
		{"unparsable code file", []Variable{Var("FAKE_EXIT_FILE", "invalid")},
			FailureUnknown, 0, OutcomeSystemFailure, 0, "unknown Custom executor executable exit code 2"},
		{"leading space in code file", []Variable{Var("FAKE_EXIT_FILE", " 42")},
			FailureUnknown, 0, OutcomeSystemFailure, 0, "exit code 2"},
		{"empty code file", []Variable{Var("FAKE_EXIT_FILE", "")},
			FailureUnknown, 0, OutcomeSystemFailure, 0, "exit code 2"},
		{"system failure exit 2", []Variable{Var("FAKE_DRIVER_EXIT", "2"), Var("FAKE_EXIT_CODE", "42")},
			FailureSystem, 0, OutcomeSystemFailure, 0, "exit status 2"},
		{"unknown exit 3", []Variable{Var("FAKE_DRIVER_EXIT", "3")},
			FailureUnknown, 0, OutcomeSystemFailure, 0, "unknown Custom executor executable exit code 3"},
		{"unknown exit 255", []Variable{Var("FAKE_DRIVER_EXIT", "255")},
			FailureUnknown, 0, OutcomeSystemFailure, 0, "exit code 255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			job := basicJob()
			job.AfterScript = []string{"echo after-fail status=$CI_JOB_STATUS"}
			job.Variables = append(append(job.Variables, Var("FAKE_EXIT_STAGE", "build_script")), tt.vars...)
			res := h.run(job)

			x := res.Exec(StageBuildScript)
			if x == nil {
				t.Fatalf("no build_script exec: %v", res.Sequence())
			}
			if x.Failure != tt.failure || x.BuildExitCode != tt.buildCode {
				t.Errorf("exec failure %q build code %d, want %q %d (err %v)", x.Failure, x.BuildExitCode, tt.failure, tt.buildCode, x.Err)
			}
			if res.Outcome.Kind != tt.outcome || res.Outcome.ExitCode != tt.exitCode || !strings.Contains(res.Outcome.Message, tt.messagePart) {
				t.Errorf("outcome %+v, want %s/%d containing %q", res.Outcome, tt.outcome, tt.exitCode, tt.messagePart)
			}
			// Whatever the failure, after_script runs and sees "failed".
			after := recordFor(t, h.records(), "run:after_script")
			if got := after.EnvMap()["CUSTOM_ENV_CI_JOB_STATUS"]; got != "failed" {
				t.Errorf("after_script CI_JOB_STATUS = %q, want failed", got)
			}
			if !strings.Contains(res.Log, "after-fail status=failed\n") {
				t.Errorf("after_script output missing from the log")
			}
			equalStrings(t, "sequence", res.Sequence(), []string{"config", "prepare", "run:prepare_script",
				"run:get_sources", "run:build_script", "run:after_script", "run:cleanup_file_variables", "cleanup"})
			assertGone(t, res.TempDirs...)
		})
	}
}

// TestScriptExit42 is the reference "failing" job run for real by bash.
func TestScriptExit42(t *testing.T) {
	h := newHarness(t)
	job := basicJob()
	job.Script = []string{"echo about to fail", "exit 42"}
	job.AfterScript = []string{"echo after-fail"}
	res := h.run(job)
	if res.Outcome.Kind != OutcomeBuildFailure || res.Outcome.ExitCode != 42 {
		t.Fatalf("outcome %v", res.Outcome)
	}
	x := res.Exec("build_script")
	if x.ExitCode != 1 || x.BuildExitCode != 42 || x.Ended != EndedExited {
		t.Errorf("build_script exec: exit %d build %d ended %s", x.ExitCode, x.BuildExitCode, x.Ended)
	}
	rs := h.records()
	if got := recordFor(t, rs, "run:after_script").EnvMap()["CUSTOM_ENV_CI_JOB_STATUS"]; got != "failed" {
		t.Errorf("after_script status %q", got)
	}
	if got := recordFor(t, rs, "cleanup").EnvMap()["CUSTOM_ENV_CI_JOB_STATUS"]; got != "failed" {
		t.Errorf("cleanup status %q", got)
	}
	plain := PlainText(res.Log)
	for _, want := range []string{"$ exit 42\n", "Running after_script\n", "Running after script...\n$ echo after-fail\nafter-fail\n",
		"ERROR: Job failed: exit code 42\n"} {
		if !strings.Contains(plain, want) {
			t.Errorf("log lacks %q:\n%s", want, plain)
		}
	}
}

func TestCleanupFailureOnlyWarns(t *testing.T) {
	h := newHarness(t)
	job := basicJob()
	job.Variables = append(job.Variables, Var("FAKE_CLEANUP_EXIT", "2"))
	res := h.run(job)
	if res.Outcome.Kind != OutcomeSuccess {
		t.Errorf("outcome %v, want success", res.Outcome)
	}
	if !strings.Contains(res.Log, "WARNING: Cleanup script failed: exit status 2") {
		t.Errorf("no cleanup warning in the log")
	}
	assertGone(t, res.TempDirs...)
}

func TestAfterScriptErrorsIgnored(t *testing.T) {
	for _, ignore := range []bool{true, false} {
		h := newHarness(t)
		job := basicJob()
		job.AfterScript = []string{"exit 5"}
		if !ignore {
			job.Variables = append(job.Variables, Var("AFTER_SCRIPT_IGNORE_ERRORS", "false"))
		}
		res := h.run(job)
		want := Outcome{Kind: OutcomeSuccess}
		if !ignore {
			want = Outcome{Kind: OutcomeBuildFailure, ExitCode: 5}
		}
		if res.Outcome.Kind != want.Kind || res.Outcome.ExitCode != want.ExitCode {
			t.Errorf("ignore=%v: outcome %v, want %v", ignore, res.Outcome, want)
		}
	}
}
