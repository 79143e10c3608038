package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
	"gitlab.com/dind-executor/dind-executor/stages"
)

// hookRun is one direct invocation of the binary, as the runner would
// start it, for inputs the emulator cannot produce (a broken job response).
type hookRun struct {
	exitCode int
	stdout   string
	stderr   string
}

func runHook(t *testing.T, tmp string, vars []string, args ...string) hookRun {
	t.Helper()
	cmd := exec.Command(env.binary, args...)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), vars...)
	return runCommand(t, cmd)
}

// runnerEnv is what the runner sets for every hook, for a temp dir.
func runnerEnv(tmp string, withResponse bool) []string {
	vars := []string{
		"TMPDIR=" + tmp, "BUILD_FAILURE_EXIT_CODE=1", "SYSTEM_FAILURE_EXIT_CODE=2",
		"BUILD_EXIT_CODE_FILE=" + filepath.Join(tmp, "build_exit_code"),
	}
	if withResponse {
		vars = append(vars, "JOB_RESPONSE_FILE="+filepath.Join(tmp, "response.json"))
	}
	return vars
}

// A job response that is missing or broken fails prepare as a system
// failure that says what is wrong; cleanup after it succeeds and nothing
// is left.
func TestBrokenJobResponseIsSystemFailure(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name         string
		response     *string // nil: no file written
		withVariable bool
		wantMessage  string
	}{
		{"variable not set", nil, false, "JOB_RESPONSE_FILE is not set"},
		{"file missing", nil, true, "no such file"},
		{"empty file", ptr(""), true, "empty document"},
		{"truncated JSON", ptr(`{"id": 12, "job_info": {"name": "x"`), true, "malformed JSON"},
		{"no job id", ptr(`{"job_info": {"name": "x"}}`), true, `no "id"`},
	}
	configPath := writeConfig(t, seedConfig())
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			if tc.response != nil {
				if err := os.WriteFile(filepath.Join(tmp, "response.json"), []byte(*tc.response), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			vars := runnerEnv(tmp, tc.withVariable)
			prep := runHook(t, tmp, vars, "--config", configPath, "prepare")
			if prep.exitCode != 2 {
				t.Fatalf("prepare exit code %d, want 2 (system failure); stderr: %s", prep.exitCode, prep.stderr)
			}
			if !strings.Contains(prep.stderr, tc.wantMessage) {
				t.Errorf("prepare stderr %q lacks %q", prep.stderr, tc.wantMessage)
			}
			if !tc.withVariable {
				return
			}
			cleanup := runHook(t, tmp, vars, "--config", configPath, "cleanup")
			if cleanup.exitCode != 0 {
				t.Errorf("cleanup after a failed prepare exit code %d: %s", cleanup.exitCode, cleanup.stderr)
			}
			assertNothingLeft(t, executor.LabelSandbox, string(stages.SandboxID(hostname, filepath.Join(tmp, "response.json"))))
		})
	}
}

// A config the operator got wrong fails the config hook, before anything
// is created, with the key, the value and what is allowed.
func TestBadConfigIsSystemFailure(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, toml string
		want       []string
	}{
		{"unknown key", "[sandbox]\ndind_imag = \"x\"\n", []string{`unknown key "sandbox.dind_imag"`}},
		{"bad enum", "[sandbox]\ndaemon_security = \"root\"\n", []string{"sandbox.daemon_security", `"root"`, "privileged", "capabilities"}},
		{"bad duration", "[sandbox]\nready_timeout = \"soon\"\n", []string{"ready_timeout", "soon"}},
		{"bad size", "[limits]\nmemory = \"lots\"\n", []string{"limits.memory", "lots"}},
		{"not TOML", "[sandbox\n", []string{"cannot parse TOML"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			job := simpleJob("echo never")
			e := newEmulator(t, tc.toml)
			res := runJob(t, e, job)
			if res.Outcome.Kind != runner.OutcomeSystemFailure {
				t.Fatalf("outcome = %s, want system failure", res.Outcome)
			}
			cfg := res.Execs[0]
			if cfg.Kind != runner.ExecConfig || cfg.ExitCode != 2 {
				t.Fatalf("first exec = %s exit %d, want config exiting 2", cfg.Kind, cfg.ExitCode)
			}
			for _, want := range tc.want {
				if !strings.Contains(cfg.Output, want) {
					t.Errorf("config hook output %q lacks %q", cfg.Output, want)
				}
			}
			assertJobLeftNothing(t, job.ID)
		})
	}
}

// An image that exists nowhere fails prepare as a system failure naming
// the image; the runner's retries and cleanups leave nothing behind.
func TestMissingImageIsSystemFailure(t *testing.T) {
	t.Parallel()
	job := simpleJob("echo never")
	job.Image.Name = "dind-executor.local/does-not-exist:never"
	res := runJob(t, newEmulator(t, seedConfig()), job)
	if res.Outcome.Kind != runner.OutcomeSystemFailure {
		t.Fatalf("outcome = %s, want system failure", res.Outcome)
	}
	var prepares int
	for _, x := range res.Execs {
		if x.Kind == runner.ExecPrepare {
			prepares++
			if !strings.Contains(x.Output, "dind-executor.local/does-not-exist:never") {
				t.Errorf("prepare output does not name the image: %s", x.Output)
			}
		}
	}
	if prepares != 3 {
		t.Errorf("%d prepare attempts, want the runner's 3", prepares)
	}
	assertJobLeftNothing(t, job.ID)
}

// A daemon that never comes up fails prepare, bounded by ready_timeout or
// at once when its container exits, with its last log lines in the error.
func TestDaemonNeverReadyReportsItsLogs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, entrypoint string
		want             []string
	}{
		{"never listens", `echo pretending to be dockerd; exec sleep 600`,
			[]string{"not ready over mutual TLS after 3s", "last log lines of dind-", "pretending to be dockerd"}},
		{"exits at start", `echo dockerd: failed to start daemon: no storage driver; exit 3`,
			[]string{"exited with code 3 before it was ready", "no storage driver"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			image := buildImage(t, "FROM "+seedjob.JobImage+"\nENTRYPOINT [\"sh\", \"-c\", \""+tc.entrypoint+"\", \"--\"]\n")
			config := withReadyTimeout(t, seedConfig(), "3s")
			config = strings.Replace(config, seedjob.DaemonImage, image, 1)
			e := newEmulator(t, config)
			e.PrepareAttempts = 1
			job := simpleJob("echo never")
			res := runJob(t, e, job)
			if res.Outcome.Kind != runner.OutcomeSystemFailure {
				t.Fatalf("outcome = %s, want system failure", res.Outcome)
			}
			prep := res.Execs[1]
			for _, want := range tc.want {
				if !strings.Contains(prep.Output, want) {
					t.Errorf("prepare output lacks %q:\n%s", want, prep.Output)
				}
			}
			assertJobLeftNothing(t, job.ID)
		})
	}
}

func ptr(s string) *string { return &s }
