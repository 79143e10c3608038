package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// shellCommand feeds the stage script from stdin to bash, or to sh where
// the image has no bash, as the runner's docker executor does. Helper
// stages run with umask 0000, as the docker executor's helper does, so a
// build container running as another user can write what git checked out.
func shellCommand(role Role) []string {
	const detect = "if command -v bash >/dev/null 2>&1; then exec bash; fi; exec sh"
	if role == RoleHelper {
		return []string{"sh", "-c", "umask 0000; " + detect}
	}
	return []string{"sh", "-c", detect}
}

const (
	// stopGrace is how long stage processes get between TERM and KILL.
	// The runner itself waits up to its graceful_kill_timeout for us, so we
	// escalate on our own well before that.
	stopGrace = 5 * time.Second
	// exitWait bounds the wait for the exec's exit code after its streams end.
	exitWait = 5 * time.Second
	// execCallTimeout bounds one Engine call of a stage (create, attach,
	// signal, inspect): an Engine that does not answer in that time is
	// not going to.
	execCallTimeout = 30 * time.Second
)

// ExecResult is how a stage script ended.
type ExecResult struct {
	ExitCode    int
	Canceled    bool // ctx ended while it ran; its processes were stopped
	Duration    time.Duration
	OutputBytes int64
}

// ExecOptions is one stage to run.
type ExecOptions struct {
	Stage  string    // the runner's name for it, for the audit trail
	Role   Role      // the container that runs it: RoleBuild or RoleHelper
	Script io.Reader // fed to the shell's stdin
	Stdout io.Writer
	Stderr io.Writer
}

// exec runs a stage script in the sandbox container of its role, streaming
// its output live (memory stays flat whatever the size). A non-zero
// ExitCode is the script's own failure; an error is the sandbox's. When ctx
// ends, the stage's processes are sent TERM, then KILL after stopGrace,
// and exec returns once they are gone.
func (e *docker) exec(ctx context.Context, id SandboxID, o ExecOptions) (ExecResult, error) {
	started := time.Now()
	role, script, stdout, stderr := o.Role, o.Script, o.Stdout, o.Stderr
	name := id.Name(role)
	// The exec's own calls must outlive a cancelled stage (we still need
	// to stop it and read its status), each within its own bound: nothing
	// here waits on an Engine call that nothing can interrupt.
	apiCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), execCallTimeout)
	defer cancel()

	created, err := e.api.ExecCreate(apiCtx, name, client.ExecCreateOptions{
		AttachStdin: true, AttachStdout: true, AttachStderr: true, Cmd: shellCommand(role),
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return ExecResult{}, fmt.Errorf("%s container %s not found: prepare did not complete, or cleanup already ran: %w", role, name, err)
		}
		if cerrdefs.IsConflict(err) {
			if why := e.exitedAtStart(apiCtx, name, role); why != "" {
				return ExecResult{}, errors.New(why)
			}
		}
		return ExecResult{}, fmt.Errorf("create exec in %s container %s: %w", role, name, err)
	}
	attached, err := e.api.ExecAttach(apiCtx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return ExecResult{}, fmt.Errorf("attach to exec in %s container %s: %w", role, name, err)
	}
	defer attached.Close()

	go func() {
		// A write error means the script exited early; its status tells.
		_, _ = io.Copy(attached.Conn, script)
		_ = attached.CloseWrite()
	}()
	out := &countingWriter{w: stdout}
	errOut := &countingWriter{w: stderr}
	streamed := make(chan error, 1) // buffered: the goroutine never blocks on exit
	go func() {
		_, err := stdcopy.StdCopy(out, errOut, attached.Reader)
		streamed <- err
	}()

	res := ExecResult{}
	select {
	case err = <-streamed:
	case <-ctx.Done():
		res.Canceled = true
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*stopGrace+execCallTimeout)
		err = e.stopStage(stopCtx, name, streamed)
		cancel()
	}
	statusCtx, cancelStatus := context.WithTimeout(context.WithoutCancel(ctx), exitWait+execCallTimeout)
	defer cancelStatus()
	res.OutputBytes = out.n + errOut.n
	if err != nil && !errors.Is(err, io.EOF) {
		return res, fmt.Errorf("stream output of %s container %s: %w", role, name, err)
	}
	res.ExitCode, err = e.execExitCode(statusCtx, created.ID)
	res.Duration = time.Since(started)
	if err != nil {
		return res, fmt.Errorf("exit status of stage in %s container %s: %w", role, name, err)
	}
	return res, nil
}

// stopStage signals every process of the container but its PID 1 (the
// keep-alive) with TERM, then KILL if the stream has not ended after
// stopGrace. It returns the stream's final error.
func (e *docker) stopStage(ctx context.Context, container string, streamed <-chan error) error {
	for _, sig := range []string{"TERM", "KILL"} {
		if err := e.signalStage(ctx, container, sig); err != nil {
			e.log.WithError(err).WithField("container", container).Warn("signal stage processes")
		}
		select {
		case err := <-streamed:
			return err
		case <-time.After(stopGrace):
		}
	}
	return fmt.Errorf("stage processes in %s still running %s after KILL", container, stopGrace)
}

// signalScript runs as root inside the container: it spares PID 1 and itself.
const signalScript = `for p in /proc/[0-9]*; do pid=${p#/proc/}; ` +
	`[ "$pid" -eq 1 ] || [ "$pid" -eq $$ ] || kill -"$1" "$pid" 2>/dev/null; done; true`

func (e *docker) signalStage(ctx context.Context, container, sig string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	created, err := e.api.ExecCreate(ctx, container, client.ExecCreateOptions{
		User: "0", Cmd: []string{"sh", "-c", signalScript, "signal", sig},
	})
	if err != nil {
		return fmt.Errorf("create %s exec: %w", sig, err)
	}
	// Started is enough: the stage's stream ending is what says it worked.
	if _, err := e.api.ExecStart(ctx, created.ID, client.ExecStartOptions{Detach: true}); err != nil {
		return fmt.Errorf("start %s exec: %w", sig, err)
	}
	return nil
}

// execExitCode waits briefly for the exec to be reported as ended: its
// streams can close a moment before the Engine records the status.
func (e *docker) execExitCode(ctx context.Context, execID string) (int, error) {
	deadline := time.Now().Add(exitWait)
	for {
		res, err := e.api.ExecInspect(ctx, execID, client.ExecInspectOptions{})
		if err != nil {
			return 0, err
		}
		if !res.Running {
			return res.ExitCode, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("exec %s still running %s after its output ended", execID, exitWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
