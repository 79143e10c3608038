package runner

import (
	"strings"
	"testing"
)

func TestExecEnvOrder(t *testing.T) {
	vars := variables{Var("CI_PROJECT_DIR", "/b/p"), Var("X", "1"), Var("X", "2")}
	got := execEnv([]string{"PATH=/bin", "TMPDIR=/tmp"}, "/tmp/custom-executor1",
		map[string]string{"ZED": "z", "TMPDIR": "/override"}, vars, `[{"name":"s"}]`)
	want := []string{
		"PATH=/bin", "TMPDIR=/tmp",
		"TMPDIR=/tmp/custom-executor1",
		"BUILD_FAILURE_EXIT_CODE=1",
		"SYSTEM_FAILURE_EXIT_CODE=2",
		"BUILD_EXIT_CODE_FILE=/tmp/custom-executor1/build_exit_code",
		"JOB_RESPONSE_FILE=/tmp/custom-executor1/response.json",
		"TMPDIR=/override", "ZED=z",
		"CUSTOM_ENV_CI_PROJECT_DIR=/b/p", "CUSTOM_ENV_X=1", "CUSTOM_ENV_X=2",
		`CUSTOM_ENV_CI_JOB_SERVICES=[{"name":"s"}]`,
	}
	equalStrings(t, "env", got, want)
}

func TestCIJobServices(t *testing.T) {
	vars := variables{Var("TAG", "27"), {Key: "SECRET", Value: "file-content", File: true}}
	tests := []struct {
		name     string
		services []Image
		want     string
	}{
		{"none", nil, ""},
		{"reference", []Image{{Name: "docker:26-dind", Alias: "docker", Command: []string{"--mtu=1400"}}},
			`[{"name":"docker:26-dind","alias":"docker","entrypoint":null,"command":["--mtu=1400"]}]`},
		{"first alias, expanded name, variables", []Image{{
			Name: "docker:${TAG}-dind", Alias: "dind, docker other", Entrypoint: []string{"sh", "-c"},
			Variables: []Variable{Var("TLS", "/certs/$TAG"), Var("S", "$SECRET")},
		}, {Name: "redis"}},
			`[{"name":"docker:27-dind","alias":"dind","entrypoint":["sh","-c"],"command":null,"variables":{"S":"/p.tmp/SECRET","TLS":"/certs/27"}},` +
				`{"name":"redis","alias":"","entrypoint":null,"command":null}]`},
	}
	for _, tt := range tests {
		if got := ciJobServices(tt.services, vars, "/p.tmp"); got != tt.want {
			t.Errorf("%s:\n got  %s\n want %s", tt.name, got, tt.want)
		}
	}
}

func keys(vs variables) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Key)
	}
	return out
}

func TestAllVariablesOrderAndExpansion(t *testing.T) {
	e := &Emulator{ShortToken: "abc123", Environment: []string{"RUNNER_ENV=from-toml"},
		FeatureFlags: map[string]bool{"FF_NETWORK_PER_BUILD": true}}
	job := Job{ID: 7, Name: "j", ProjectPath: "grp/sub/app", Image: Image{Name: "alpine"},
		Variables: []Variable{
			Var("JOB_VAR", "with 'quotes' and $dollar"),
			{Key: "RAW", Value: "$HOME$$", Raw: true},
			Var("DOLLARS", "a$$b"),
			{Key: "CERT", Value: "-----BEGIN", File: true},
			Var("USES_CERT", "$CERT"),
			Var("FF_USE_FASTZIP", "false"),
			Var("FF_NETWORK_PER_BUILD", "false"),
		}}.withDefaults()
	st := buildState{buildsDir: "/builds", projectDir: "/builds/grp/sub/app", status: "running"}
	vs := e.allVariables(job, st, "alpine")
	k := keys(vs)

	if k[0] != featureFlags[0].name || len(k) < len(featureFlags) || k[len(featureFlags)-1] != featureFlags[len(featureFlags)-1].name {
		t.Fatalf("feature flags are not first: %v", k[:3])
	}
	rest := strings.Join(k[len(featureFlags):], " ")
	wantPrefix := "CI_JOB_IMAGE CI_RUNNER_SHORT_TOKEN RUNNER_ENV CI_BUILDS_DIR CI_PROJECT_DIR CI_CONCURRENT_ID " +
		"CI_CONCURRENT_PROJECT_ID CI_SERVER CI_JOB_STATUS CI_JOB_TIMEOUT CI GITLAB_CI"
	wantSuffix := "JOB_VAR RAW DOLLARS CERT USES_CERT CI_SHARED_ENVIRONMENT CI_RUNNER_VERSION CI_RUNNER_REVISION " +
		"CI_RUNNER_EXECUTABLE_ARCH RUNNER_TEMP_PROJECT_DIR"
	if !strings.HasPrefix(rest, wantPrefix) || !strings.HasSuffix(rest, wantSuffix) {
		t.Errorf("order:\n got  %s\n want %s … %s", rest, wantPrefix, wantSuffix)
	}
	if strings.Count(" "+strings.Join(k, " ")+" ", " FF_USE_FASTZIP ") != 1 {
		t.Errorf("FF_ job variables must not be repeated: %v", k)
	}
	for key, want := range map[string]string{
		"JOB_VAR":                 "with 'quotes' and ",
		"RAW":                     "$HOME$$",
		"DOLLARS":                 "a$b",
		"CERT":                    "-----BEGIN",
		"USES_CERT":               "/builds/grp/sub/app.tmp/CERT",
		"FF_USE_FASTZIP":          "false", // job variable overrides the default (true)
		"FF_NETWORK_PER_BUILD":    "true",  // config.toml overrides the job
		"FF_USE_LEGACY_BASH_EVAL": "true",  // the reference script shape
		"CI_RUNNER_SHORT_TOKEN":   "abc123",
		"CI_PROJECT_NAMESPACE":    "grp/sub",
		"CI_PROJECT_NAME":         "app",
		"CI_PROJECT_PATH_SLUG":    "grp-sub-app",
		"RUNNER_TEMP_PROJECT_DIR": "/builds/grp/sub/app.tmp",
		"CI_JOB_TIMEOUT":          "3600",
		"CI_SHARED_ENVIRONMENT":   "true",
	} {
		if got := vs.Value(key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}

	// Before config_exec the directories are empty.
	early := e.allVariables(job, buildState{status: "running"}, "alpine")
	for key, want := range map[string]string{"CI_BUILDS_DIR": "", "CI_PROJECT_DIR": "", "RUNNER_TEMP_PROJECT_DIR": ".tmp"} {
		if got := early.Value(key); got != want {
			t.Errorf("before config: %s = %q, want %q", key, got, want)
		}
	}
}

func TestMasker(t *testing.T) {
	m := newMasker([]string{"s3cr3t-value", "", "s3cr3t"}, []string{"glpat-"})
	got := m.mask("a s3cr3t-value b s3cr3t c glpat-abcDEF_12-3 d")
	want := "a [MASKED] b [MASKED] c glpat-[MASKED] d"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestPlainText(t *testing.T) {
	in := "section_start:1700000000:step_script\r\x1b[0K\x1b[36;1mExecuting\x1b[0;m\nout\nsection_end:1700000001:step_script\r\x1b[0K"
	if got, want := PlainText(in), "Executing\nout\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
