package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

var (
	fakeDriver string // built testdata/fakedriver
	// runnerBinDir holds only the built testdata/gitlab-runner; every
	// harness puts it first on the PATH of the processes it starts.
	runnerBinDir string
	testRepo     string // a local git repository with one commit
	testSHA      string
)

// standInBanner starts every line testdata/gitlab-runner prints.
const standInBanner = "gitlab-runner test stand-in:"

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "runner-emulator-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)

	fakeDriver = filepath.Join(dir, "fakedriver")
	runnerBinDir = filepath.Join(dir, "bin")
	for _, b := range []struct{ out, pkg string }{
		{fakeDriver, "./testdata/fakedriver"},
		{filepath.Join(runnerBinDir, "gitlab-runner"), "./testdata/gitlab-runner"},
	} {
		if out, err := exec.Command("go", "build", "-o", b.out, b.pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", b.pkg, err, out)
			return 1
		}
	}
	testRepo = filepath.Join(dir, "repo")
	if testSHA, err = makeRepo(testRepo); err != nil {
		fmt.Fprintln(os.Stderr, "making test repository:", err)
		return 1
	}
	return m.Run()
}

func makeRepo(dir string) (string, error) {
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("git %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out)), nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello from the repo\n"), 0o644); err != nil {
		return "", err
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"commit", "-q", "-m", "init"}} {
		if _, err := git(args...); err != nil {
			return "", err
		}
	}
	return git("rev-parse", "HEAD")
}

// Record mirrors testdata/fakedriver's record.
type Record struct {
	Hook            string   `json:"hook"`
	Args            []string `json:"args"`
	Cwd             string   `json:"cwd"`
	Env             []string `json:"env"`
	PID             int      `json:"pid"`
	PGID            int      `json:"pgid"`
	Stdin           string   `json:"stdin"`
	Stage           string   `json:"stage"`
	ScriptPath      string   `json:"script_path"`
	Script          string   `json:"script"`
	ScriptMode      uint32   `json:"script_mode"`
	JobResponse     string   `json:"job_response"`
	JobResponseMode uint32   `json:"job_response_mode"`
	ChildPID        int      `json:"child_pid"`
	GotSIGTERM      bool     `json:"got_sigterm"`
	Finished        bool     `json:"finished"`
	ExitCode        int      `json:"exit_code"`
}

// EnvMap is the record's environment as the process saw it.
func (r Record) EnvMap() map[string]string {
	m := map[string]string{}
	for _, kv := range r.Env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// Name is "config", "prepare", "run:<stage>" or "cleanup".
func (r Record) Name() string {
	if r.Hook == "run" {
		return "run:" + r.Stage
	}
	return r.Hook
}

// harness is one emulator wired to the fake driver.
type harness struct {
	t         *testing.T
	e         *Emulator
	root      string // builds/ and cache/ live here
	recordDir string
	log       bytes.Buffer
	runnerLog bytes.Buffer
}

func newHarness(t *testing.T, env ...string) *harness {
	t.Helper()
	h := &harness{t: t, root: t.TempDir(), recordDir: t.TempDir()}
	h.e = &Emulator{
		Binary:               fakeDriver,
		Args:                 []string{"--config", "/etc/fake.toml"},
		Env:                  append([]string{"FAKE_RECORD_DIR=" + h.recordDir, "FAKE_ROOT=" + h.root, standInPath()}, env...),
		TempRoot:             t.TempDir(),
		GracefulKillTimeout:  5 * time.Second,
		ForceKillTimeout:     5 * time.Second,
		PrepareRetryInterval: 20 * time.Millisecond,
		Log:                  &h.log,
		RunnerLog:            &h.runnerLog,
	}
	return h
}

// standInPath is PATH with runnerBinDir first: the stage scripts the fake
// driver runs on the host call gitlab-runner, and must get the stand-in,
// never a gitlab-runner the host happens to have. (os/exec keeps the last
// PATH, and Emulator.Env comes after the emulator's own environment.)
func standInPath() string {
	return "PATH=" + runnerBinDir + string(os.PathListSeparator) + os.Getenv("PATH")
}

func (h *harness) run(job Job, opts ...RunOption) *Result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := h.e.Run(ctx, job, opts...)
	if err != nil {
		h.t.Fatalf("Run: %v", err)
	}
	return res
}

func (h *harness) records() []Record {
	h.t.Helper()
	files, err := filepath.Glob(filepath.Join(h.recordDir, "*.json"))
	if err != nil {
		h.t.Fatal(err)
	}
	sort.Strings(files)
	var out []Record
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			h.t.Fatal(err)
		}
		var r Record
		if err := json.Unmarshal(data, &r); err != nil {
			h.t.Fatalf("%s: %v", f, err)
		}
		out = append(out, r)
	}
	return out
}

func names(rs []Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name())
	}
	return out
}

func recordFor(t *testing.T, rs []Record, name string) Record {
	t.Helper()
	for _, r := range rs {
		if r.Name() == name {
			return r
		}
	}
	t.Fatalf("no record %q in %v", name, names(rs))
	return Record{}
}

// basicJob is a small job that checks out the test repository.
func basicJob() Job {
	return Job{
		ID: 4711, Name: "build", Stage: "test", ProjectID: 42, PipelineID: 900, ProjectPath: "grp/app",
		RepoURL: testRepo, Ref: "main", SHA: testSHA, Timeout: 600,
		Image:     Image{Name: "debian:bookworm"},
		Script:    []string{"echo script-ran"},
		Variables: []Variable{Var("GLOBAL_VAR", "global value")},
	}
}

func assertGone(t *testing.T, dirs ...string) {
	t.Helper()
	if len(dirs) == 0 {
		t.Fatal("no temp dirs recorded")
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("temp dir %s still exists (err=%v)", d, err)
		}
	}
}

// processGone reports whether pid has exited (a zombie counts as gone).
func processGone(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, after, _ := strings.Cut(string(data), ") ")
	return strings.HasPrefix(after, "Z") || strings.HasPrefix(after, "X")
}

func equalStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}
