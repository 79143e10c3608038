package runner

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestStageSequence(t *testing.T) {
	withEverything := func(j Job) Job {
		j.AfterScript = []string{"echo after"}
		j.Cache = []Cache{{Key: "deps", Paths: []string{"cachedir/"}, When: "always"}}
		j.Artifacts = []Artifact{{Paths: []string{"out/"}}, {Paths: []string{"logs/"}, When: "on_failure"}}
		return j
	}
	tests := []struct {
		name      string
		job       func() Job
		runnerURL string
		opts      []RunOption
		want      []string
		outcome   Outcome
	}{
		{
			name: "minimal success",
			job:  basicJob,
			want: []string{"config", "prepare", "run:prepare_script", "run:get_sources", "run:build_script",
				"run:cleanup_file_variables", "cleanup"},
			outcome: Outcome{Kind: OutcomeSuccess},
		},
		{
			name:      "success with cache, artifacts, after_script",
			job:       func() Job { return withEverything(basicJob()) },
			runnerURL: "http://127.0.0.1:1",
			want: []string{"config", "prepare", "run:prepare_script", "run:get_sources", "run:restore_cache",
				"run:build_script", "run:after_script", "run:archive_cache", "run:upload_artifacts_on_success",
				"run:cleanup_file_variables", "cleanup"},
			outcome: Outcome{Kind: OutcomeSuccess},
		},
		{
			name: "exit 42 still runs after_script and the on_failure stages",
			job: func() Job {
				j := withEverything(basicJob())
				j.Script = []string{"echo about to fail", "exit 42", "echo never"}
				return j
			},
			runnerURL: "http://127.0.0.1:1",
			want: []string{"config", "prepare", "run:prepare_script", "run:get_sources", "run:restore_cache",
				"run:build_script", "run:after_script", "run:archive_cache_on_failure",
				"run:upload_artifacts_on_failure", "run:cleanup_file_variables", "cleanup"},
			outcome: Outcome{Kind: OutcomeBuildFailure, ExitCode: 42},
		},
		{
			name: "extra steps stop at the first failure",
			job: func() Job {
				j := basicJob()
				j.Steps = []Step{{Name: "Release", Script: []string{"exit 3"}}, {Name: "later", Script: []string{"true"}}}
				j.AfterScript = []string{"true"}
				return j
			},
			want: []string{"config", "prepare", "run:prepare_script", "run:get_sources", "run:build_script",
				"run:step_release", "run:after_script", "run:cleanup_file_variables", "cleanup"},
			outcome: Outcome{Kind: OutcomeBuildFailure, ExitCode: 3},
		},
		{
			name: "get_sources failure skips the user scripts",
			job: func() Job {
				j := withEverything(basicJob())
				j.RepoURL = "/nonexistent/repo"
				return j
			},
			want: []string{"config", "prepare", "run:prepare_script", "run:get_sources",
				"run:archive_cache_on_failure", "run:cleanup_file_variables", "cleanup"},
			// git exits 128, but errexit inside `: | eval` (the 15.11 shape) exits 1.
			outcome: Outcome{Kind: OutcomeBuildFailure, ExitCode: 1},
		},
		{
			name: "GET_SOURCES_ATTEMPTS retries with clear_worktree once",
			job: func() Job {
				j := basicJob()
				j.RepoURL = "/nonexistent/repo"
				j.Variables = append(j.Variables, Var("GET_SOURCES_ATTEMPTS", "3"))
				return j
			},
			want: []string{"config", "prepare", "run:prepare_script", "run:get_sources", "run:clear_worktree",
				"run:get_sources", "run:get_sources", "run:cleanup_file_variables", "cleanup"},
			// git exits 128, but errexit inside `: | eval` (the 15.11 shape) exits 1.
			outcome: Outcome{Kind: OutcomeBuildFailure, ExitCode: 1},
		},
		{
			name: "prepare_script failure ends the job",
			job: func() Job {
				j := withEverything(basicJob())
				j.Variables = append(j.Variables, Var("FAKE_EXIT_STAGE", "prepare_script"), Var("FAKE_EXIT_CODE", "7"))
				return j
			},
			want:    []string{"config", "prepare", "run:prepare_script", "cleanup"},
			outcome: Outcome{Kind: OutcomeBuildFailure, ExitCode: 7},
		},
		{
			name: "step_script sent unrewritten",
			job:  basicJob,
			opts: []RunOption{WithUserStageName("step_script")},
			want: []string{"config", "prepare", "run:prepare_script", "run:get_sources", "run:step_script",
				"run:cleanup_file_variables", "cleanup"},
			outcome: Outcome{Kind: OutcomeSuccess},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.e.RunnerURL = tt.runnerURL
			res := h.run(tt.job(), tt.opts...)
			if res.Outcome.Kind != tt.outcome.Kind || res.Outcome.ExitCode != tt.outcome.ExitCode {
				t.Errorf("outcome %v, want %v\n%s", res.Outcome, tt.outcome, PlainText(res.Log))
			}
			equalStrings(t, "emulator sequence", res.Sequence(), tt.want)
			equalStrings(t, "driver-recorded sequence", names(h.records()), tt.want)
			assertGone(t, res.TempDirs...)
		})
	}
}

// TestExecShapes checks argv, cwd, stdin, process group and files of every
// call against what the reference runner passed.
func TestExecShapes(t *testing.T) {
	h := newHarness(t)
	job := basicJob()
	job.AfterScript = []string{"echo after"}
	res := h.run(job)
	if res.Outcome.Kind != OutcomeSuccess {
		t.Fatalf("outcome %v\n%s", res.Outcome, res.Log)
	}
	tmp := res.TempDir
	if filepath.Dir(tmp) != h.e.TempRoot || !strings.HasPrefix(filepath.Base(tmp), "custom-executor") {
		t.Errorf("temp dir %s is not %s/custom-executor*", tmp, h.e.TempRoot)
	}
	scriptPath := regexp.MustCompile("^" + regexp.QuoteMeta(tmp) + "/script[^/]+/script$")
	seen := map[string]bool{}
	for _, r := range h.records() {
		prefix := []string{fakeDriver, "--config", "/etc/fake.toml", r.Hook}
		if r.Hook == "run" {
			if !scriptPath.MatchString(r.ScriptPath) {
				t.Errorf("%s: script path %s does not match %s", r.Name(), r.ScriptPath, scriptPath)
			}
			if seen[filepath.Dir(r.ScriptPath)] {
				t.Errorf("%s: script dir %s reused", r.Name(), filepath.Dir(r.ScriptPath))
			}
			seen[filepath.Dir(r.ScriptPath)] = true
			if r.ScriptMode != 0o700 {
				t.Errorf("%s: script mode %o, want 700", r.Name(), r.ScriptMode)
			}
			if !strings.HasPrefix(r.Script, "#!/usr/bin/env bash\n\n") || !strings.HasSuffix(r.Script, "\nexit 0\n") {
				t.Errorf("%s: script shape:\n%s", r.Name(), r.Script)
			}
			prefix = append(prefix, r.ScriptPath, r.Stage)
		}
		equalStrings(t, r.Name()+" argv", r.Args, prefix)
		if r.Cwd != tmp {
			t.Errorf("%s: cwd %s, want %s", r.Name(), r.Cwd, tmp)
		}
		if r.Stdin != "/dev/null" {
			t.Errorf("%s: stdin %q, want /dev/null", r.Name(), r.Stdin)
		}
		if r.PGID != r.PID {
			t.Errorf("%s: pgid %d != pid %d (Setpgid)", r.Name(), r.PGID, r.PID)
		}
		if r.JobResponseMode != 0o600 {
			t.Errorf("%s: response.json mode %o, want 600", r.Name(), r.JobResponseMode)
		}
		var resp respJob
		if err := json.Unmarshal([]byte(r.JobResponse), &resp); err != nil || resp.ID != 4711 || resp.JobInfo.ProjectFullPath != "grp/app" {
			t.Errorf("%s: job response %v %+v", r.Name(), err, resp.JobInfo)
		}
		if !r.Finished || r.ExitCode != 0 {
			t.Errorf("%s: finished=%v exit=%d", r.Name(), r.Finished, r.ExitCode)
		}
	}
	// The checkout really happened inside the project dir.
	if res.ProjectDir != filepath.Join(h.root, "builds", "grp", "app") {
		t.Errorf("project dir %s", res.ProjectDir)
	}
	if data, err := os.ReadFile(filepath.Join(res.ProjectDir, "hello.txt")); err != nil || string(data) != "hello from the repo\n" {
		t.Errorf("checked-out file: %q, %v", data, err)
	}
}

// parentEnv is what every exec inherits from the "runner process".
func parentEnv(h *harness) map[string]string {
	m := map[string]string{}
	for _, kv := range append(os.Environ(), h.e.Env...) {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// runnerDefined is the part of an exec's environment the runner added.
func runnerDefined(r Record, parent map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range r.EnvMap() {
		if pv, ok := parent[k]; !ok || pv != v || k == "TMPDIR" {
			out[k] = v
		}
	}
	return out
}

func TestExecEnvironment(t *testing.T) {
	h := newHarness(t)
	job := basicJob()
	job.AfterScript = []string{"echo after"}
	job.Services = []Image{{Name: "docker:27-dind", Alias: "docker", Command: []string{"--mtu=1400"}}}
	job.Variables = append(job.Variables, Var("JOB_VAR", "with 'quotes' and $dollar"))
	res := h.run(job)
	if res.Outcome.Kind != OutcomeSuccess {
		t.Fatalf("outcome %v\n%s", res.Outcome, res.Log)
	}
	tmp, pd := res.TempDir, res.ProjectDir
	parent := parentEnv(h)
	vars := h.e.allVariables(job.withDefaults(), buildState{}, "")

	for _, r := range h.records() {
		env := runnerDefined(r, parent)
		afterConfig := r.Hook != "config"
		want := map[string]string{
			"TMPDIR":                   tmp,
			"BUILD_FAILURE_EXIT_CODE":  "1",
			"SYSTEM_FAILURE_EXIT_CODE": "2",
			"BUILD_EXIT_CODE_FILE":     tmp + "/build_exit_code",
			"JOB_RESPONSE_FILE":        tmp + "/response.json",
		}
		if afterConfig {
			want["FAKE_JOB_ENV"] = "from-config"
		}
		status := "running"
		if r.Stage == StageAfterScript || r.Stage == StageCleanupFileVariables || r.Hook == "cleanup" {
			status = "success"
		}
		for _, v := range vars {
			want["CUSTOM_ENV_"+v.Key] = v.Value
		}
		dirs := map[string]string{"CI_BUILDS_DIR": "", "CI_PROJECT_DIR": "", "RUNNER_TEMP_PROJECT_DIR": ".tmp"}
		if afterConfig {
			dirs = map[string]string{"CI_BUILDS_DIR": filepath.Join(h.root, "builds"), "CI_PROJECT_DIR": pd,
				"RUNNER_TEMP_PROJECT_DIR": pd + ".tmp"}
		}
		for k, v := range dirs {
			want["CUSTOM_ENV_"+k] = v
		}
		want["CUSTOM_ENV_CI_JOB_STATUS"] = status
		want["CUSTOM_ENV_CI_JOB_IMAGE"] = "debian:bookworm"
		want["CUSTOM_ENV_CI_JOB_SERVICES"] = `[{"name":"docker:27-dind","alias":"docker","entrypoint":null,"command":["--mtu=1400"]}]`
		want["CUSTOM_ENV_JOB_VAR"] = "with 'quotes' and "

		for k, v := range want {
			if got, ok := env[k]; !ok || got != v {
				t.Errorf("%s: %s = %q (set %v), want %q", r.Name(), k, got, ok, v)
			}
		}
		for k := range env {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: unexpected runner-defined variable %s=%q", r.Name(), k, env[k])
			}
		}
	}
}

func TestLogRouting(t *testing.T) {
	h := newHarness(t)
	job := basicJob()
	job.Token = "glcbt-supersecret"
	job.Variables = append(job.Variables, Variable{Key: "PASSWORD", Value: "hunter2-hunter2", Masked: true})
	job.Script = []string{`echo "pw=$PASSWORD token=$CI_JOB_TOKEN"`}
	res := h.run(job)
	if res.Outcome.Kind != OutcomeSuccess {
		t.Fatalf("outcome %v\n%s", res.Outcome, res.Log)
	}
	plain := PlainText(res.Log)
	for _, want := range []string{
		"Running with gitlab-runner 19.4.0 (fc1f1862)",
		"Preparing the \"custom\" executor\nfake config stderr\nUsing Custom executor with driver fake v0...\n",
		"fake prepare for job 4711 build\n",
		"Preparing environment\nRunning on ",
		" via fake-host...\n",
		"Getting source from Git repository\n",
		"Executing \"step_script\" stage of the job script\nWARNING: Starting with version 17.0 the 'build_script' stage",
		"$ echo \"pw=$PASSWORD token=$CI_JOB_TOKEN\"\npw=[MASKED] token=[MASKED]\n",
		"Cleaning up project directory and file based variables\n",
		"Job succeeded\n",
	} {
		if !strings.Contains(plain, want) {
			t.Errorf("job log lacks %q", want)
		}
	}
	for _, secret := range []string{"hunter2-hunter2", "supersecret", "fake cleanup", `"builds_dir"`} {
		if strings.Contains(res.Log, secret) || strings.Contains(h.log.String(), secret) {
			t.Errorf("job log contains %q", secret)
		}
	}
	if !strings.Contains(res.Log, "section_start:") || !strings.Contains(res.Log, ":step_script\r\x1b[0K") {
		t.Errorf("job log has no section markers")
	}
	if h.log.String() != res.Log {
		t.Errorf("live Log writer and Result.Log differ")
	}
	for _, want := range []string{"fake cleanup stdout\n", "fake cleanup stderr\n"} {
		if !strings.Contains(res.RunnerLog, want) || !strings.Contains(h.runnerLog.String(), want) {
			t.Errorf("runner log lacks %q: %q", want, res.RunnerLog)
		}
	}
}

func TestGitStrategies(t *testing.T) {
	for _, tt := range []struct {
		strategy string
		wantFile bool
		wantLog  string
	}{
		{"", true, "Fetching changes..."},
		{"clone", true, "Fetching changes..."},
		{"fetch", true, "Created fresh repository."},
		{"none", false, "Skipping Git repository setup"},
	} {
		t.Run("strategy="+tt.strategy, func(t *testing.T) {
			h := newHarness(t)
			job := basicJob()
			job.GitStrategy = tt.strategy
			job.Script = []string{"ls -a"}
			res := h.run(job)
			if res.Outcome.Kind != OutcomeSuccess {
				t.Fatalf("outcome %v\n%s", res.Outcome, PlainText(res.Log))
			}
			_, err := os.Stat(filepath.Join(res.ProjectDir, "hello.txt"))
			if (err == nil) != tt.wantFile {
				t.Errorf("hello.txt present=%v, want %v", err == nil, tt.wantFile)
			}
			if !strings.Contains(PlainText(res.Log), tt.wantLog) {
				t.Errorf("log lacks %q", tt.wantLog)
			}
		})
	}
}
