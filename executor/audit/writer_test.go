package audit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// bigRecord is a record whose line is about size bytes: larger than a pipe
// buffer and than one page, so a non-atomic append would show.
func bigRecord(writer string, seq, size int) Record {
	return Record{
		Time: time.Unix(1700000000, 0).UTC(), Event: EventStageFinished,
		Sandbox: writer, Job: JobRef{ID: int64(seq + 1), Name: strings.Repeat("x", size)},
		Stage: &Stage{Name: "build_script", Container: "build", ExitCode: seq},
	}
}

// helperWriterEnv makes the test binary act as one more writer process.
const helperWriterEnv = "AUDIT_TEST_HELPER_WRITER"

func TestHelperWriterProcess(t *testing.T) {
	spec := os.Getenv(helperWriterEnv)
	if spec == "" {
		return // only a helper when started by TestAppendIsAtomicAcrossProcesses
	}
	path, name, _ := strings.Cut(spec, "|")
	w := NewWriter(path)
	for i := range 50 {
		if err := w.Append(bigRecord(name, i, 20000+i*97)); err != nil {
			t.Fatal(err)
		}
	}
}

// Several processes and goroutines append large records at once: every
// line must come back whole, and none may be lost.
func TestAppendIsAtomicAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "audit.jsonl")
	const procs, goroutines, perGoroutine = 4, 4, 50

	var cmds []*exec.Cmd
	for p := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriterProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|proc%d", helperWriterEnv, path, p))
		cmds = append(cmds, cmd)
	}
	outputs := make([][]byte, procs)
	var wg sync.WaitGroup
	for i, cmd := range cmds {
		wg.Go(func() {
			out, err := cmd.CombinedOutput()
			if err != nil {
				outputs[i] = append(out, []byte(err.Error())...)
			}
		})
	}
	w := NewWriter(path)
	errs := make(chan error, goroutines*perGoroutine)
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				errs <- w.Append(bigRecord("goroutine"+strconv.Itoa(g), i, 30000+i*13))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, out := range outputs {
		if out != nil {
			t.Fatalf("writer process %d failed: %s", i, out)
		}
	}

	res, err := ReadFile(context.Background(), path, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 0 {
		t.Fatalf("%d torn or garbled lines", res.Skipped)
	}
	if want := procs*50 + goroutines*perGoroutine; len(res.Records) != want {
		t.Fatalf("%d records, want %d", len(res.Records), want)
	}
	seen := map[string]int{}
	for _, r := range res.Records {
		if r.Stage == nil || r.Stage.ExitCode != int(r.Job.ID)-1 {
			t.Fatalf("record of %s is not the one written: %+v", r.Sandbox, r.Stage)
		}
		seen[r.Sandbox]++
	}
	if len(seen) != procs+goroutines {
		t.Errorf("writers seen: %v", seen)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != fileMode {
		t.Errorf("trail mode %o, want %o", mode, fileMode)
	}
}

func TestAppendErrors(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path string
		record     Record
		want       string
	}{
		{"directory is a file", filepath.Join(blocker, "audit.jsonl"), Record{Event: EventStageFinished}, "create audit trail directory"},
		{"path is a directory", dir, Record{Event: EventStageFinished}, "open audit trail"},
		{"record too large", filepath.Join(dir, "a.jsonl"), bigRecord("x", 0, MaxRecordBytes), "more than the"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := NewWriter(tc.path).Append(tc.record)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
