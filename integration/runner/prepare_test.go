package runner

import (
	"strings"
	"testing"
)

func TestPrepareRetries(t *testing.T) {
	attempt := []string{"config", "prepare", "cleanup"}
	three := append(append(append([]string{}, attempt...), attempt...), attempt...)
	tests := []struct {
		name     string
		env      []string // process env of the fake (config output)
		vars     []Variable
		want     []string
		attempts int
		outcome  OutcomeKind
		message  string
	}{
		{name: "system failure in prepare is retried 3 times",
			vars: []Variable{Var("FAKE_PREPARE_EXIT", "2")}, want: three, attempts: 3,
			outcome: OutcomeSystemFailure, message: "exit status 2"},
		{name: "unknown exit code in prepare is retried",
			vars: []Variable{Var("FAKE_PREPARE_EXIT", "9")}, want: three, attempts: 3,
			outcome: OutcomeSystemFailure, message: "exit code 9"},
		{name: "second attempt succeeds",
			vars: []Variable{Var("FAKE_PREPARE_EXIT", "2"), Var("FAKE_PREPARE_FAIL_TIMES", "1")},
			want: append(append([]string{}, attempt...), "config", "prepare", "run:prepare_script", "run:get_sources",
				"run:build_script", "run:cleanup_file_variables", "cleanup"),
			attempts: 2, outcome: OutcomeSuccess},
		{name: "build failure in prepare is not retried",
			vars: []Variable{Var("FAKE_PREPARE_EXIT", "1")}, want: attempt, attempts: 1,
			outcome: OutcomeBuildFailure},
		{name: "config exit 2 is retried",
			vars: []Variable{Var("FAKE_CONFIG_EXIT", "2")}, want: []string{"config", "cleanup", "config", "cleanup", "config", "cleanup"},
			attempts: 3, outcome: OutcomeSystemFailure},
		{name: "invalid config JSON is retried",
			env: []string{"FAKE_CONFIG_JSON={not json"}, want: []string{"config", "cleanup", "config", "cleanup", "config", "cleanup"},
			attempts: 3, outcome: OutcomeSystemFailure, message: "error while parsing JSON output"},
		{name: "a lone newline is not empty output",
			env: []string{"FAKE_CONFIG_JSON=\n"}, want: []string{"config", "cleanup", "config", "cleanup", "config", "cleanup"},
			attempts: 3, outcome: OutcomeSystemFailure, message: "error while parsing JSON output"},
		{name: "missing builds_dir is a configuration error",
			env: []string{`FAKE_CONFIG_JSON={"cache_dir":"/tmp"}`}, want: []string{"config", "cleanup"},
			attempts: 1, outcome: OutcomeConfigError, message: "the builds_dir is not configured"},
		{name: "empty builds_dir is a configuration error",
			env: []string{`FAKE_CONFIG_JSON={"builds_dir":"","cache_dir":"/tmp"}`}, want: []string{"config", "cleanup"},
			attempts: 1, outcome: OutcomeConfigError, message: "the builds_dir is not configured"},
		{name: "missing cache_dir is a configuration error",
			env: []string{`FAKE_CONFIG_JSON={"builds_dir":"/tmp"}`}, want: []string{"config", "cleanup"},
			attempts: 1, outcome: OutcomeConfigError, message: "the cache_dir is not configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.env...)
			job := basicJob()
			job.Variables = append(job.Variables, tt.vars...)
			res := h.run(job)
			equalStrings(t, "sequence", res.Sequence(), tt.want)
			equalStrings(t, "recorded", names(h.records()), tt.want)
			if res.Outcome.Kind != tt.outcome || !strings.Contains(res.Outcome.Message, tt.message) {
				t.Errorf("outcome %+v, want %s containing %q", res.Outcome, tt.outcome, tt.message)
			}
			if len(res.TempDirs) != tt.attempts {
				t.Fatalf("%d temp dirs, want %d", len(res.TempDirs), tt.attempts)
			}
			// Every attempt has its own fresh <tmp>, used by all its execs.
			seen := map[string]bool{}
			for _, x := range res.Execs {
				if x.TempDir != res.TempDirs[x.Attempt-1] {
					t.Errorf("%s of attempt %d ran in %s, want %s", x.Kind, x.Attempt, x.TempDir, res.TempDirs[x.Attempt-1])
				}
				seen[x.TempDir] = true
			}
			if len(seen) != tt.attempts {
				t.Errorf("temp dirs used: %v", seen)
			}
			for _, r := range h.records() {
				if !seen[r.Cwd] {
					t.Errorf("%s ran in %s, not an attempt dir", r.Name(), r.Cwd)
				}
			}
			if tt.attempts > 1 && !strings.Contains(res.Log, "Will be retried in 20ms ...") {
				t.Errorf("no retry notice in the log")
			}
			assertGone(t, res.TempDirs...)
		})
	}
}

func TestConfigOutputApplied(t *testing.T) {
	h := newHarness(t)
	h.e.ShortToken, h.e.ConcurrentProjectID = "tok12345", 3
	h.e.Env = append(h.e.Env, `FAKE_CONFIG_JSON={"builds_dir":"`+h.root+`/b","cache_dir":"`+h.root+`/c",`+
		`"builds_dir_is_shared":true,"job_env":{"A":"1"},"hostname":"hh","driver":{"name":"dind"}}`)
	job := basicJob()
	job.Cache = []Cache{{Paths: []string{"vendor/"}}}
	res := h.run(job)
	if res.Outcome.Kind != OutcomeSuccess {
		t.Fatalf("outcome %v\n%s", res.Outcome, PlainText(res.Log))
	}
	if want := h.root + "/b/tok12345/3/grp/app"; res.ProjectDir != want {
		t.Errorf("shared project dir %s, want %s", res.ProjectDir, want)
	}
	if want := h.root + "/c/grp/app"; res.CacheDir != want {
		t.Errorf("cache dir %s, want %s", res.CacheDir, want)
	}
	if res.Config == nil || res.Config.Hostname == nil || *res.Config.Hostname != "hh" {
		t.Errorf("parsed config %+v", res.Config)
	}
	plain := PlainText(res.Log)
	for _, want := range []string{"Using Custom executor with driver dind...\n", " via hh...\n"} {
		if !strings.Contains(plain, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	// The default cache key is <job name>/<ref>, relative to the project dir.
	rc := recordFor(t, h.records(), "run:restore_cache")
	if !strings.Contains(rc.Script, `cache-extractor --file ../../../../../c/grp/app/build/main/cache.zip --timeout 10`) {
		t.Errorf("restore_cache script:\n%s", rc.Script)
	}
	if got := recordFor(t, h.records(), "prepare").EnvMap()["A"]; got != "1" {
		t.Errorf("job_env A = %q", got)
	}
}
