package runner

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// BuildError is the runner's reading of a driver exit 1: the job's script
// failed with ExitCode (from BUILD_EXIT_CODE_FILE, default 1).
type BuildError struct {
	ExitCode int
	Inner    error
}

func (e *BuildError) Error() string { return e.Inner.Error() }
func (e *BuildError) Unwrap() error { return e.Inner }

// UnknownExitError is a driver exit code other than 0, 1 and 2, a death by
// signal, or an exit 1 with an unparsable BUILD_EXIT_CODE_FILE (ExitCode 2).
type UnknownExitError struct {
	ExitCode int
	Inner    error
}

func (e *UnknownExitError) Error() string {
	return fmt.Sprintf("unknown Custom executor executable exit code %d; executable execution terminated with: %v",
		e.ExitCode, e.Inner)
}
func (e *UnknownExitError) Unwrap() error { return e.Inner }

// ConfigError is a configuration problem (missing builds_dir/cache_dir);
// the runner fails the job without retrying.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

// execRequest is one driver invocation.
type execRequest struct {
	kind       ExecKind
	attempt    int
	stage      string // sent stage (run)
	buildStage string // runner stage (run)
	args       []string
	scriptPath string
	tmpDir     string
	env        []string
	stdout     io.Writer
	stderr     io.Writer
	started    func(pid int) // called once the process runs
}

// runExec starts the driver like the runner's command.Run: cwd <tmp>,
// stdin /dev/null, own process group; when ctx ends before the driver does,
// the group gets SIGTERM, then SIGKILL after GracefulKillTimeout.
func (e *Emulator) runExec(ctx context.Context, req execRequest) Exec {
	rec := Exec{
		Kind: req.kind, Attempt: req.attempt, Stage: req.stage, BuildStage: req.buildStage,
		Argv: append([]string{e.Binary}, req.args...), ScriptPath: req.scriptPath, TempDir: req.tmpDir,
		ExitCode: -1, Started: time.Now(),
	}
	var captured lockedBuffer
	cmd := exec.Command(e.Binary, req.args...)
	cmd.Dir = req.tmpDir
	cmd.Env = req.env
	cmd.Stdout = io.MultiWriter(&captured, req.stdout)
	cmd.Stderr = io.MultiWriter(&captured, req.stderr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	if err := cmd.Start(); err != nil {
		rec.Ended, rec.Failure = EndedNotStarted, FailureSystem
		rec.Err = fmt.Errorf("failed to start command: %w", err)
		return rec
	}
	if req.started != nil {
		req.started(cmd.Process.Pid)
	}
	peak := sampleHWM(cmd.Process.Pid)
	waitCh := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		peak.stop()
		waitCh <- err
	}()

	var err error
	select {
	case err = <-waitCh:
		rec.Ended = EndedExited
	case <-ctx.Done():
		k := killAndWait(cmd.Process.Pid, waitCh, e.gracefulKillTimeout(), e.forceKillTimeout())
		err, rec.Ended, rec.TermToExit = k.err, k.ending, k.termToExit
	}
	rec.Duration = time.Since(rec.Started)
	rec.MaxRSSKB = peak.kb()
	rec.Output = captured.String()
	e.classify(&rec, err, filepath.Join(req.tmpDir, BuildExitCodeFileName))
	return rec
}

// classify maps the exec's end to the runner's errors: 0 is success, 1 a
// build failure whose code is the first line of BUILD_EXIT_CODE_FILE (1 when
// missing), 2 a system failure, anything else (a signal included) an
// unknown exit code, which the runner treats as a system failure.
func (e *Emulator) classify(rec *Exec, err error, exitCodeFile string) {
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		rec.ExitCode = 0
		return
	case errors.As(err, &exitErr):
		rec.ExitCode = exitErr.ExitCode()
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			rec.Signal = ws.Signal().String()
		}
	default: // could not kill it, or Wait failed
		rec.Failure, rec.Err = FailureSystem, err
		return
	}

	switch rec.ExitCode {
	case BuildFailureExitCode:
		code, parseErr := readBuildExitCode(exitCodeFile)
		if parseErr != nil {
			rec.Failure = FailureUnknown
			rec.Err = &UnknownExitError{ExitCode: SystemFailureExitCode, Inner: err}
			return
		}
		rec.BuildExitCode, rec.Failure = code, FailureBuild
		inner := err
		if code != BuildFailureExitCode {
			inner = fmt.Errorf("exit status %d", code)
		}
		rec.Err = &BuildError{ExitCode: code, Inner: inner}
	case SystemFailureExitCode:
		rec.Failure, rec.Err = FailureSystem, err
	default:
		rec.Failure = FailureUnknown
		rec.Err = &UnknownExitError{ExitCode: rec.ExitCode, Inner: err}
	}
}

// readBuildExitCode reads BUILD_EXIT_CODE_FILE like parseBuildFailure: a
// missing file means 1; otherwise the first line must be an integer.
func readBuildExitCode(file string) (int, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return BuildFailureExitCode, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	first := ""
	if sc.Scan() {
		first = sc.Text()
	}
	return strconv.Atoi(first)
}
