package runner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A hook started through a HookAttempt sees what the same hook sees under
// Run: argv, cwd, the job response and the environment.
func TestHookAttemptMatchesRun(t *testing.T) {
	h := newHarness(t)
	h.run(basicJob())
	underRun := recordFor(t, h.records(), "prepare")
	// The same harness (same builds root), with its records cleared.
	if err := os.RemoveAll(h.recordDir); err != nil || os.Mkdir(h.recordDir, 0o755) != nil {
		t.Fatalf("clear records: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := h.e.NewHookAttempt(ctx, basicJob())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(a.TempDir), "custom-executor") {
		t.Errorf("temp dir %s is not the runner's custom-executor*", a.TempDir)
	}
	cmd := a.Command(ctx, "prepare")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("prepare: %v\n%s", err, out)
	}
	rs := h.records()
	equalStrings(t, "hooks run", names(rs), []string{"config", "prepare"})
	got := recordFor(t, rs, "prepare")

	if got.Cwd != a.TempDir || got.PGID != got.PID || got.Stdin != underRun.Stdin {
		t.Errorf("cwd %s pgid %d pid %d stdin %q; want cwd %s, own group, stdin %q", got.Cwd, got.PGID, got.PID, got.Stdin, a.TempDir, underRun.Stdin)
	}
	equalStrings(t, "argv after the binary", got.Args[1:], underRun.Args[1:])
	if got.JobResponse != underRun.JobResponse {
		t.Errorf("job response differs from Run's:\n got  %s\n want %s", got.JobResponse, underRun.JobResponse)
	}
	// Only the paths under the two temp dirs may differ.
	normalize := func(r Record) []string {
		var out []string
		for _, kv := range r.Env {
			if !strings.HasPrefix(kv, "FAKE_RECORD_DIR=") && !strings.HasPrefix(kv, "FAKE_ROOT=") {
				out = append(out, strings.ReplaceAll(kv, r.Cwd, "<tmp>"))
			}
		}
		return out
	}
	equalStrings(t, "environment", normalize(got), normalize(underRun))

	script, err := a.WriteScript("exit 0\n")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(script); err != nil || info.Mode().Perm() != 0o700 || filepath.Dir(filepath.Dir(script)) != a.TempDir {
		t.Errorf("script %s: %v %v", script, info, err)
	}
	if err := a.Remove(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, a.TempDir)
}
