package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

// wrapCommand turns the bench binary into a thin wrapper around one driver
// call: the runner emulator execs it in place of dind-executor in the
// concurrency section, so that every hook's peak RSS (the child's rusage,
// which the emulator does not expose) is appended to a record file. It
// costs one extra fork/exec per hook (a few ms; see the README).
const wrapCommand = "__rusage-wrap"

// runWrapped is: __rusage-wrap <record-file> <binary> <args...>. It runs
// the binary with the same stdio, environment and process group, waits,
// records "<hook> <maxrss KiB> <wall ns>" and exits like the child did.
func runWrapped(args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench "+wrapCommand+" <record-file> <binary> [args...]")
		return 2
	}
	record, bin, rest := args[0], args[1], args[2:]
	// The runner signals the whole process group, so the child gets TERM
	// itself; the wrapper only waits for it (Notify, not Ignore: an ignored
	// signal would stay ignored in the exec'd child).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGTERM, syscall.SIGINT)

	cmd := exec.Command(bin, rest...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		fmt.Fprintf(os.Stderr, "bench wrapper: %v\n", err)
		return 2
	}
	st := cmd.ProcessState
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		if f, err := os.OpenFile(record, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			fmt.Fprintf(f, "%s %d %d\n", hookName(rest), ru.Maxrss, wall.Nanoseconds())
			f.Close()
		}
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		signal.Reset(ws.Signal())
		_ = syscall.Kill(os.Getpid(), ws.Signal())
		time.Sleep(time.Second)
	}
	return st.ExitCode()
}

// hookName is the first driver argument that names a hook.
func hookName(args []string) string {
	for i, a := range args {
		switch a {
		case "config", "prepare", "cleanup":
			return a
		case "run":
			if i+2 < len(args) {
				return "run:" + args[i+2]
			}
			return a
		}
	}
	return "unknown"
}
