package executor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func stat(comm string, start uint64) string {
	// Fields 3..21 then starttime (22) and a few more.
	return "4711 (" + comm + ") S 1 4711 4711 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 " + strconv.FormatUint(start, 10) + " 1000 10\n"
}

func TestParseStartTicks(t *testing.T) {
	cases := []struct {
		name, stat string
		want       uint64
		wantErr    bool
	}{
		{"plain", stat("gitlab-runner", 12345), 12345, false},
		{"a command name with spaces and parentheses", stat("a) b (c", 99), 99, false},
		{"truncated", "4711 (x) S 1 2", 0, true},
		{"no command name", "4711 x S", 0, true},
		{"not a number", strings.Replace(stat("x", 1), " 1 1000", " x 1000", 1), 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStartTicks([]byte(tc.stat))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func FuzzParseStartTicks(f *testing.F) {
	f.Add([]byte(stat("gitlab-runner", 12345)))
	f.Add([]byte("1 ()"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = parseStartTicks(data) // must not panic
	})
}

// fakeProc is a /proc with this process as pid 10 and the runners given.
func fakeProc(t *testing.T, ns string, runners map[int]uint64) procfs {
	t.Helper()
	root := t.TempDir()
	write := func(path, data string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, path), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("sys/kernel/random/boot_id", "boot-1\n")
	write(strconv.Itoa(os.Getpid())+"/stat", stat("dind-executor", 500))
	for pid, start := range runners {
		write(strconv.Itoa(pid)+"/stat", stat("gitlab-runner", start))
	}
	if err := os.MkdirAll(filepath.Join(root, "self", "ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(ns, filepath.Join(root, "self", "ns", "pid")); err != nil {
		t.Fatal(err)
	}
	return procfs{root: root}
}

func TestOwnerAlive(t *testing.T) {
	here := "pid:[4026531836]"
	p := fakeProc(t, here, map[int]uint64{100: 7000})
	runner := Owner{PID: 100, StartTicks: 7000, PIDNamespace: here, BootID: "boot-1"}
	cases := []struct {
		name             string
		owner            func(Owner) Owner
		wantAlive, known bool
	}{
		{"running", func(o Owner) Owner { return o }, true, true},
		{"gone", func(o Owner) Owner { o.PID = 101; return o }, false, true},
		{"pid reused by another process", func(o Owner) Owner { o.StartTicks = 6999; return o }, false, true},
		{"another pid namespace: cannot tell", func(o Owner) Owner { o.PIDNamespace = "pid:[1]"; return o }, false, false},
		{"before a reboot: cannot tell", func(o Owner) Owner { o.BootID = "boot-0"; return o }, false, false},
		{"no owner recorded", func(Owner) Owner { return Owner{} }, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			alive, known := p.alive(tc.owner(runner))
			if alive != tc.wantAlive || known != tc.known {
				t.Errorf("alive=%v known=%v, want %v %v", alive, known, tc.wantAlive, tc.known)
			}
		})
	}
}

// On the real /proc, this test process owns itself.
func TestOwnerOfThisProcess(t *testing.T) {
	o, err := OwnerOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if alive, known := o.Alive(); !alive || !known {
		t.Errorf("this process: alive=%v known=%v (%+v)", alive, known, o)
	}
}
