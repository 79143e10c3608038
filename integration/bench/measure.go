package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// hookRun is one measured process (a hook, or the docker CLI), timed from
// just before fork to just after its output was drained and it was reaped.
type hookRun struct {
	Start, End time.Time
	Wall       time.Duration
	MaxRSSKB   int64 // rusage ru_maxrss of the child: its peak resident set
	UserCPU    time.Duration
	SysCPU     time.Duration
	ExitCode   int
	OutBytes   int64
	Lines      []timedLine // output lines with their arrival time (keepLines)
}

// outputMode says what happens to a process's stdout.
type outputMode int

const (
	keepLines   outputMode = iota // record every line with its arrival time
	discardData                   // count bytes only (throughput)
)

// measure runs cmd with stdin from stdinFile ("" leaves cmd.Stdin, nil
// being /dev/null), drains stdout as mode says (stderr is always kept as
// lines) and returns the measurements. A non-zero exit is an error.
func measure(cmd *exec.Cmd, mode outputMode, stdinFile string) (hookRun, error) {
	if stdinFile != "" {
		f, err := os.Open(stdinFile)
		if err != nil {
			return hookRun{}, fmt.Errorf("stdin: %w", err)
		}
		defer f.Close()
		cmd.Stdin = f
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	lines := &lineRecorder{}
	cmd.Stderr = lines
	outR, outW, err := os.Pipe()
	if err != nil {
		return hookRun{}, fmt.Errorf("stdout pipe: %w", err)
	}
	cmd.Stdout = outW
	name := filepath.Base(cmd.Path)

	var res hookRun
	drained := make(chan int64, 1)
	res.Start = time.Now()
	if err := cmd.Start(); err != nil {
		outR.Close()
		outW.Close()
		return hookRun{}, fmt.Errorf("start %s: %w", name, err)
	}
	outW.Close()
	go func() {
		defer outR.Close()
		if mode == keepLines {
			n, _ := io.Copy(lines, outR)
			drained <- n
			return
		}
		drained <- drain(outR)
	}()
	res.OutBytes = <-drained
	waitErr := cmd.Wait()
	res.End = time.Now()
	res.Wall = res.End.Sub(res.Start)
	res.Lines = lines.lines()
	if st := cmd.ProcessState; st != nil {
		res.ExitCode = st.ExitCode()
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
			res.MaxRSSKB = ru.Maxrss
			res.UserCPU = time.Duration(ru.Utime.Nano())
			res.SysCPU = time.Duration(ru.Stime.Nano())
		}
	}
	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) {
		return res, fmt.Errorf("%s: %w", name, waitErr)
	}
	if res.ExitCode != 0 {
		return res, fmt.Errorf("%s %s exited with %d:\n%s", name, strings.Join(cmd.Args[1:], " "), res.ExitCode, res.text(20))
	}
	return res, nil
}

// text is the last n output lines, for error messages.
func (r hookRun) text(n int) string {
	var buf bytes.Buffer
	lines := r.Lines
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for _, l := range lines {
		buf.WriteString("  " + l.Text + "\n")
	}
	return buf.String()
}

// lineAt is when the first line containing sub arrived.
func (r hookRun) lineAt(sub string) (time.Time, bool) {
	for _, l := range r.Lines {
		if strings.Contains(l.Text, sub) {
			return l.At, true
		}
	}
	return time.Time{}, false
}

// drain reads r to its end in large reads and counts the bytes, so that
// the sink is never what limits a throughput figure (io.Discard's own
// ReadFrom would read in 8 KiB pieces).
func drain(r io.Reader) int64 {
	buf := make([]byte, 1<<20)
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if err != nil {
			return n
		}
	}
}
