package executor

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestMemoryNotesAreBelievedOnlyWhenOursFreshAndWhole(t *testing.T) {
	now := time.Now()
	mems := map[string]int64{"unix:///a.sock": 8 << 30, "tcp://b:2376": 32 << 30}
	tests := []struct {
		name    string
		spoil   func(t *testing.T, path string)
		believe bool
	}{
		{"as written", func(*testing.T, string) {}, true},
		{"older than the bound", func(t *testing.T, path string) {
			old := now.Add(-memoryNotesAge - time.Minute)
			if err := os.Chtimes(path, old, old); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"writable by others", func(t *testing.T, path string) {
			if err := os.Chmod(path, 0o666); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"a symlink to notes elsewhere", func(t *testing.T, path string) {
			elsewhere := path + ".planted"
			if err := os.Rename(path, elsewhere); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(elsewhere, path); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"written by another user", func(t *testing.T, path string) {
			if err := os.Chown(path, 65534, 65534); err != nil {
				t.Fatalf("chown (the tests run as root, as CI does): %v", err)
			}
		}, false},
		{"not JSON", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("{8 GiB"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			notes := memoryNotesFor(dir, []string{"unix:///a.sock", "tcp://b:2376"})
			if err := notes.write(mems); err != nil {
				t.Fatal(err)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "*.*.*")); len(left) != 0 {
				t.Errorf("write left temp files: %v", left)
			}
			tc.spoil(t, notes.path)
			got := notes.read(now)
			if tc.believe && (len(got) != 2 || got["tcp://b:2376"] != 32<<30) {
				t.Errorf("read %v, want %v", got, mems)
			}
			if !tc.believe && got != nil {
				t.Errorf("read %v, want nothing believed", got)
			}
		})
	}
}

func TestMemoryNotesAreNamedAfterTheEngineList(t *testing.T) {
	a := memoryNotesFor("/tmp", []string{"unix:///a.sock", "tcp://b:2376"})
	b := memoryNotesFor("/tmp", []string{"tcp://b:2376", "unix:///a.sock"})
	if a.path == b.path {
		t.Errorf("two Engine lists share notes %s", a.path)
	}
}
