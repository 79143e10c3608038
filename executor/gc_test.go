package executor

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	liveRunner    = 1
	deadRunner    = 2
	unknownRunner = 3
)

// runners says which fake runner processes run, by pid.
func runners(o Owner) (alive, known bool) {
	switch o.PID {
	case liveRunner:
		return true, true
	case deadRunner:
		return false, true
	}
	return false, false
}

func owned(sb SandboxInfo, pid int) SandboxInfo {
	sb.Identity.Owner = Owner{PID: pid, StartTicks: 42, PIDNamespace: "pid:[1]", BootID: "b"}
	return sb
}

func TestGCJudge(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	live, gone := "/tmp/custom-executor111", "/tmp/custom-executor222"
	dirs := func(dir string) (bool, error) {
		switch dir {
		case live:
			return true, nil
		case gone:
			return false, nil
		}
		return false, errors.New("permission denied")
	}
	sandbox := func(host, dir string, timeout int64, age time.Duration) SandboxInfo {
		id := Identity{SandboxID: "0123456789abcdef", RunnerHost: host, JobTimeoutSeconds: timeout}
		if dir != "" {
			id.JobResponseFile = dir + "/response.json"
		}
		return SandboxInfo{Identity: id, Created: now.Add(-age)}
	}
	cases := []struct {
		name       string
		sb         SandboxInfo
		olderThan  time.Duration
		wantRemove bool
		wantReason string
		wantErr    string
	}{
		{"running job, young", sandbox("here", live, 3600, time.Minute), 0, false, "job running", ""},
		{"running job is kept even past --older-than", sandbox("here", live, 3600, time.Hour), time.Second, false, "job running", ""},
		{"running job past its timeout plus margin", sandbox("here", live, 3600, 2*time.Hour+time.Second), 0, true, "older than its job's timeout", ""},
		{"job over: temp dir gone, however young", sandbox("here", gone, 3600, time.Second), 0, true, "job over: the runner's temp dir " + gone + " is gone", ""},
		{"temp dir unreadable: no guess", sandbox("here", "/root/x", 3600, time.Hour), 0, false, "", "permission denied"},
		{"other host, young", sandbox("elsewhere", gone, 3600, time.Hour), 0, false, "younger than 2h0m0s", ""},
		{"other host, older than its timeout plus margin", sandbox("elsewhere", gone, 3600, 3*time.Hour), 0, true, "older than 2h0m0s", ""},
		{"other host, --older-than", sandbox("elsewhere", gone, 3600, 10*time.Minute), 5 * time.Minute, true, "older than 5m0s", ""},
		{"no labels: the runner's default timeout", sandbox("", "", 0, 2*time.Hour), 0, false, "younger than 3h0m0s", ""},
		{"no labels, old", sandbox("", "", 0, 4*time.Hour), 0, true, "older than 3h0m0s", ""},
		{"relative response path is not trusted", sandbox("here", "tmp", 60, time.Minute), 0, false, "younger than", ""},
		{"runner killed: removed at once though its temp dir remains", owned(sandbox("here", live, 3600, time.Second), deadRunner), 0, true, "runner process 2 that prepared it is gone", ""},
		{"runner alive: the temp dir decides", owned(sandbox("here", live, 3600, time.Second), liveRunner), 0, false, "job running", ""},
		{"runner alive but its temp dir gone", owned(sandbox("here", gone, 3600, time.Second), liveRunner), 0, true, "temp dir " + gone + " is gone", ""},
		{"runner in a pid namespace gc cannot see (a runner in a container with the host's name): its temp dir is not here to judge", owned(sandbox("here", gone, 3600, time.Second), unknownRunner), 0, false, "younger than", ""},
		{"runner in a pid namespace gc cannot see, past its timeout plus margin", owned(sandbox("here", gone, 3600, 3*time.Hour), unknownRunner), 0, true, "older than 2h0m0s", ""},
		{"another host's dead-looking pid is never judged", owned(sandbox("elsewhere", live, 3600, time.Second), deadRunner), 0, false, "younger than", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := GCPolicy{OlderThan: tc.olderThan, Hostname: "here", Now: now, DirExists: dirs, OwnerAlive: runners}
			v, err := p.Judge(tc.sb)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.Remove != tc.wantRemove || !strings.Contains(v.Reason, tc.wantReason) {
				t.Errorf("remove=%v reason=%q, want remove=%v reason containing %q", v.Remove, v.Reason, tc.wantRemove, tc.wantReason)
			}
		})
	}
}

// Without an injected check, a missing directory is a job that is over.
func TestGCDirExistsOnDisk(t *testing.T) {
	dir := t.TempDir()
	for path, want := range map[string]bool{dir: true, dir + "/missing": false} {
		got, err := GCPolicy{}.dirExists(path)
		if err != nil || got != want {
			t.Errorf("dirExists(%s) = %v, %v; want %v", path, got, err, want)
		}
	}
}
