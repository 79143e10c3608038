package executor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Owner is the process a sandbox belongs to: the runner that called
// prepare (a pooled sandbox gets one when a job claims it). A pid alone
// names nothing for long: the start time tells a reused pid apart, and
// both mean something only in one pid namespace and one boot.
type Owner struct {
	PID          int
	StartTicks   uint64 // start time in clock ticks after boot (/proc/<pid>/stat)
	PIDNamespace string // e.g. "pid:[4026531836]"
	BootID       string
}

// procfs reads process facts under root ("/proc"; tests use a fake tree).
type procfs struct{ root string }

const hostProcRoot = "/proc"

// OwnerOf describes the running process pid.
func OwnerOf(pid int) (Owner, error) { return procfs{hostProcRoot}.owner(pid) }

func (p procfs) owner(pid int) (Owner, error) {
	start, err := p.startTicks(pid)
	if err != nil {
		return Owner{}, err
	}
	ns, err := os.Readlink(p.root + "/self/ns/pid")
	if err != nil {
		return Owner{}, fmt.Errorf("read this process's pid namespace: %w", err)
	}
	boot, err := os.ReadFile(p.root + "/sys/kernel/random/boot_id")
	if err != nil {
		return Owner{}, fmt.Errorf("read the boot id: %w", err)
	}
	return Owner{PID: pid, StartTicks: start, PIDNamespace: ns, BootID: strings.TrimSpace(string(boot))}, nil
}

// Alive says whether the owner still runs, and whether this process can
// tell at all: only from the same pid namespace in the same boot. A runner
// in another container, or one from before a reboot, is judged by age
// instead.
func (o Owner) Alive() (alive, known bool) { return procfs{hostProcRoot}.alive(o) }

func (p procfs) alive(o Owner) (alive, known bool) {
	if o.PID <= 0 || o.PIDNamespace == "" {
		return false, false
	}
	here, err := p.owner(os.Getpid())
	if err != nil || here.PIDNamespace != o.PIDNamespace || here.BootID != o.BootID {
		return false, false
	}
	start, err := p.startTicks(o.PID)
	if errors.Is(err, os.ErrNotExist) {
		return false, true
	}
	if err != nil {
		return false, false
	}
	return start == o.StartTicks, true
}

func (p procfs) startTicks(pid int) (uint64, error) {
	stat, err := os.ReadFile(p.root + "/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStartTicks(stat)
}

// parseStartTicks reads field 22 of /proc/<pid>/stat. The command name
// (field 2) is in parentheses and may hold spaces and parentheses itself,
// so fields are counted from the last ')'.
func parseStartTicks(stat []byte) (uint64, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("process stat has no command name")
	}
	fields := strings.Fields(string(stat[end+1:]))
	// fields[0] is field 3 (state); field 22 is fields[19].
	if len(fields) < 20 {
		return 0, fmt.Errorf("process stat has %d fields after the command name, want at least 20", len(fields))
	}
	n, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("process start time %q: %w", fields[19], err)
	}
	return n, nil
}
