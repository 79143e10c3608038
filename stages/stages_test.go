package stages

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gitlab.com/dind-executor/dind-executor/executor"
)

func TestContainerFor(t *testing.T) {
	cases := map[string]executor.Role{
		"prepare_script":              executor.RoleBuild,
		"get_sources":                 executor.RoleHelper,
		"clear_worktree":              executor.RoleHelper,
		"restore_cache":               executor.RoleHelper,
		"download_artifacts":          executor.RoleHelper,
		"build_script":                executor.RoleBuild,
		"step_script":                 executor.RoleBuild,
		"step_release":                executor.RoleBuild,
		"after_script":                executor.RoleBuild,
		"archive_cache":               executor.RoleHelper,
		"archive_cache_on_failure":    executor.RoleHelper,
		"upload_artifacts_on_success": executor.RoleHelper,
		"upload_artifacts_on_failure": executor.RoleHelper,
		"cleanup_file_variables":      executor.RoleHelper,
		"some_future_stage":           executor.RoleBuild,
	}
	for stage, want := range cases {
		if got := ContainerFor(stage); got != want {
			t.Errorf("ContainerFor(%q) = %s, want %s", stage, got, want)
		}
	}
}

func TestParseJobResponse(t *testing.T) {
	cases := []struct {
		name    string
		doc     string
		wantErr string
		wantID  int64
	}{
		{"minimal", `{"id": 7}`, "", 7},
		{"full", `{"id":4711,"job_info":{"name":"b","project_id":42,"pipeline_id":900,"project_full_path":"g/a"},"runner_info":{"timeout":60},"image":{"name":"docker:27"}}`, "", 4711},
		{"empty", ``, "empty document", 0},
		{"whitespace", " \n", "empty document", 0},
		{"truncated", `{"id": 7, "job_info": {`, "malformed JSON", 0},
		{"not an object", `[1,2]`, "malformed JSON", 0},
		{"no id", `{"job_info":{}}`, `no "id"`, 0},
		{"zero id", `{"id":0}`, "positive", 0},
		{"string id", `{"id":"7"}`, "malformed JSON", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			job, err := ParseJobResponse([]byte(tc.doc))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *job.ID != tc.wantID {
				t.Errorf("id = %d, want %d", *job.ID, tc.wantID)
			}
		})
	}
}

func TestReadJobResponseMissingFile(t *testing.T) {
	_, err := ReadJobResponse(filepath.Join(t.TempDir(), "response.json"))
	if err == nil || !strings.Contains(err.Error(), "no such file") || !strings.Contains(err.Error(), "GitLab Runner") {
		t.Fatalf("error = %v, want a missing-file error that says who writes it", err)
	}
}

func TestTimeoutSeconds(t *testing.T) {
	for in, want := range map[int64]int64{0: 7200, -5: 7200, 60: 60} {
		j := &JobResponse{RunnerInfo: RunnerInfo{Timeout: in}}
		if got := j.TimeoutSeconds(); got != want {
			t.Errorf("timeout %d -> %d, want %d", in, got, want)
		}
	}
}

func TestExitCode(t *testing.T) {
	cases := []struct {
		name     string
		err      error
		wantCode int
		wantFile string // "" means the file must not exist
	}{
		{"success", nil, 0, ""},
		{"build failure", &BuildFailure{ExitCode: 42, Stage: "build_script"}, 11, "42\n"},
		{"wrapped build failure", errors.Join(errors.New("x"), &BuildFailure{ExitCode: 3}), 11, "3\n"},
		{"system failure", errors.New("engine gone"), 22, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "build_exit_code")
			env := RunnerEnv{BuildExitCodeFile: file, BuildFailureExitCode: 11, SystemFailureExitCode: 22}
			code, err := ExitCode(tc.err, env)
			if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode {
				t.Errorf("code = %d, want %d", code, tc.wantCode)
			}
			data, err := os.ReadFile(file)
			if tc.wantFile == "" {
				if err == nil {
					t.Errorf("exit code file written with %q, want none", data)
				}
				return
			}
			if string(data) != tc.wantFile {
				t.Errorf("exit code file = %q, want %q", data, tc.wantFile)
			}
		})
	}
}

func TestExitCodeFileUnwritableIsSystemFailure(t *testing.T) {
	env := RunnerEnv{BuildExitCodeFile: filepath.Join(t.TempDir(), "missing-dir", "code"), BuildFailureExitCode: 1, SystemFailureExitCode: 2}
	code, err := ExitCode(&BuildFailure{ExitCode: 5}, env)
	if code != 2 || err == nil {
		t.Fatalf("code %d err %v, want system failure with an error", code, err)
	}
}

func TestReadRunnerEnv(t *testing.T) {
	vars := map[string]string{
		"JOB_RESPONSE_FILE": "/tmp/x/response.json", "BUILD_EXIT_CODE_FILE": "/tmp/x/build_exit_code",
		"BUILD_FAILURE_EXIT_CODE": "7", "SYSTEM_FAILURE_EXIT_CODE": "garbage", "TMPDIR": "/tmp/x",
		"CUSTOM_ENV_CI_RUNNER_VERSION": "17.5.0",
	}
	env := ReadRunnerEnv(func(k string) string { return vars[k] })
	if env.BuildFailureExitCode != 7 || env.SystemFailureExitCode != 2 {
		t.Errorf("exit codes %d/%d, want 7 and the default 2", env.BuildFailureExitCode, env.SystemFailureExitCode)
	}
	if env.JobResponseFile != "/tmp/x/response.json" || env.RunnerVersion != "17.5.0" || env.TempDir != "/tmp/x" {
		t.Errorf("unexpected env %+v", env)
	}
}

func TestSandboxID(t *testing.T) {
	a := SandboxID("host", "/tmp/custom-executor1/response.json")
	if a != SandboxID("host", "/tmp/custom-executor1/response.json") {
		t.Error("same inputs give different ids")
	}
	others := []executor.SandboxID{
		SandboxID("host", "/tmp/custom-executor2/response.json"),
		SandboxID("other-host", "/tmp/custom-executor1/response.json"),
	}
	for _, o := range others {
		if o == a {
			t.Errorf("different attempts share sandbox id %s", a)
		}
	}
	if err := a.Validate(); err != nil {
		t.Errorf("derived id is not a valid sandbox id: %v", err)
	}
}

func TestDefaultHelperImage(t *testing.T) {
	cases := []struct{ version, revision, arch, want string }{
		{"17.5.0", "abcdef12", "linux/amd64", helperRepository + ":x86_64-v17.5.0"},
		{"development version", "0123456789abcdef", "linux/arm64", helperRepository + ":arm64-01234567"},
		{"", "HEAD", "", helperRepository + ":x86_64-latest"},
	}
	for _, tc := range cases {
		if got := DefaultHelperImage(tc.version, tc.revision, tc.arch); got != tc.want {
			t.Errorf("DefaultHelperImage(%q,%q,%q) = %s, want %s", tc.version, tc.revision, tc.arch, got, tc.want)
		}
	}
}

func TestIsDinDService(t *testing.T) {
	cases := map[string]bool{
		"docker:dind":                                true,
		"docker:27-dind":                             true,
		"docker:27.3-dind-rootless":                  true,
		"docker.io/library/docker:27-dind":           true,
		"index.docker.io/library/docker:dind":        true,
		"registry.example.com/mirror/docker:27-dind": true,
		"registry.example.com:5000/docker:26-dind":   true,
		"gitlab.example.com:443/grp/dependency_proxy/containers/docker:27-dind": true,
		"docker:27-dind@sha256:" + strings.Repeat("a", 64):                      true,
		"docker:27-cli":                  false,
		"docker":                         false,
		"postgres:15":                    false,
		"mydind:latest":                  false,
		"dind:latest":                    false,
		"mycorp/docker-dind-tools:1":     false,
		"docker/compose:dind":            false,
		"registry.example.com/dind/x:27": false,
		"not a reference":                false,
	}
	for image, want := range cases {
		if got := IsDinDService(image); got != want {
			t.Errorf("IsDinDService(%q) = %v, want %v", image, got, want)
		}
	}
}

func TestDaemonAliasesAndServiceChecks(t *testing.T) {
	cases := []struct {
		name        string
		services    []JobImage
		wantAliases []string
		wantErr     string
	}{
		{"plain dind", []JobImage{{Name: "docker:27-dind"}}, nil, ""},
		{"dind with aliases", []JobImage{{Name: "docker:27-dind", Alias: "dockerd, docker-host"}}, []string{"dockerd", "docker-host"}, ""},
		{"a mirrored dind answers under the runner's names for it too", []JobImage{{Name: "registry.example.com/mirror/docker:27-dind", Alias: "docker"}},
			[]string{"registry.example.com__mirror__docker", "registry.example.com-mirror-docker"}, ""},
		{"two dind entries: one daemon, every name", []JobImage{{Name: "docker:dind", Alias: "a"}, {Name: "docker:27-dind", Alias: "b"}}, []string{"a", "b"}, ""},
		{"rootless is refused", []JobImage{{Name: "docker:27-dind-rootless"}}, nil, "rootless"},
		{"another service cannot take the daemon's name", []JobImage{{Name: "redis:7", Alias: "docker"}}, nil, "would answer as docker"},
		{"other services keep their aliases", []JobImage{{Name: "redis:7", Alias: "cache"}}, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkServices(tc.services, false, 0)
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			if got := daemonAliases(tc.services); !slices.Equal(got, tc.wantAliases) {
				t.Errorf("aliases %v, want %v", got, tc.wantAliases)
			}
		})
	}
}

// TestCheckServicesRootlessDaemon: with daemon_security = "rootless" the
// sandbox's daemon serves a rootless dind service (and a plain one).
func TestCheckServicesRootlessDaemon(t *testing.T) {
	for _, name := range []string{"docker:27-dind-rootless", "docker:dind-rootless", "docker:27-dind"} {
		if err := checkServices([]JobImage{{Name: name}}, true, 0); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := checkServices([]JobImage{{Name: "redis:7", Alias: "docker"}}, true, 0); err == nil {
		t.Error("a service answering as docker is accepted with a rootless daemon")
	}
}

// [limits] services counts the services that become containers: a dind
// entry is the sandbox's own daemon.
func TestCheckServicesLimit(t *testing.T) {
	three := []JobImage{{Name: "redis:7"}, {Name: "postgres:16"}, {Name: "docker:27-dind"}, {Name: "registry:2"}}
	cases := []struct {
		name    string
		limit   int
		wantErr string
	}{
		{"unlimited", 0, ""},
		{"at the limit", 3, ""},
		{"over it", 2, "asks for 3 services and this runner allows at most 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkServices(three, false, tc.limit)
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "[limits] services") {
				t.Errorf("the error does not say which setting: %v", err)
			}
		})
	}
}
