package executor

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"gitlab.com/dind-executor/dind-executor/executor/innerdaemon"
	"gitlab.com/dind-executor/dind-executor/executor/tlsca"
)

// daemonTLSAddr names the daemon's mutual-TLS endpoint in requests; the
// connection itself goes through the Engine (daemonDialer).
const daemonTLSAddr = tlsca.DaemonServerName + ":2376" // DaemonTLSPort

const (
	readyPollInterval = 50 * time.Millisecond
	// readyAttemptLimit bounds one ping, and its relay waits as long for
	// the port: dockerd opens it long before it serves and the handshake
	// waits in the connection until it does, so one attempt made as the
	// daemon container starts spans its whole start-up, and the answer
	// comes the moment dockerd serves, with no new relay to set up then.
	readyAttemptLimit = 10 * time.Second
	logTailLines      = 20
	maxLogTail        = 16 << 10
)

// waitReady polls the daemon's /_ping over mutual TLS until it answers OK.
// A TCP connect is not enough: dockerd opens its port before it serves. It
// stops when an attempt fails and the daemon container has exited, and its
// errors carry the daemon's last log lines so the operator sees why.
func (e *docker) waitReady(ctx context.Context, id SandboxID, tlsConfig *tls.Config, timeout time.Duration) (innerdaemon.VersionInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	attempts := 0
	var lastErr error
	// notReady is the error once the deadline passed, whatever call it
	// interrupted: the operator needs the timeout and the daemon's logs.
	notReady := func() error {
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// Stopped from outside (the job was cancelled or timed out),
			// not by ready_timeout.
			return fmt.Errorf("daemon %s: stopped before it was ready (%d attempts, last error: %v): %w",
				id.Name(RoleDaemon), attempts, lastErr, context.Cause(ctx))
		}
		return fmt.Errorf("daemon %s not ready over mutual TLS after %s (%d attempts, last error: %v; raise [sandbox] ready_timeout if the host is slow)%s",
			id.Name(RoleDaemon), timeout, attempts, lastErr, e.daemonLogTail(id))
	}
	httpClient := innerdaemon.HTTPClient(tlsConfig, readyAttemptLimit, e.daemonDialer(id, readyAttemptLimit))
	for {
		attempts++
		version, err := innerdaemon.Ping(ctx, httpClient, daemonTLSAddr)
		if lastErr = err; err == nil {
			return version, nil
		}
		if err := e.daemonStillRunning(ctx, id); err != nil {
			if ctx.Err() != nil {
				return innerdaemon.VersionInfo{}, notReady()
			}
			return innerdaemon.VersionInfo{}, err
		}
		select {
		case <-ctx.Done():
			return innerdaemon.VersionInfo{}, notReady()
		case <-time.After(readyPollInterval):
		}
	}
}

// readyWait is a waitReady running beside the rest of prepare, so the
// relay of its first ping is in place before dockerd serves.
type readyWait struct {
	stop    context.CancelFunc
	done    chan struct{}
	at      time.Time // when the daemon answered
	version innerdaemon.VersionInfo
	err     error
}

func (e *docker) startWaitReady(ctx context.Context, id SandboxID, tlsConfig *tls.Config, timeout time.Duration) *readyWait {
	ctx, stop := context.WithCancel(ctx)
	w := &readyWait{stop: stop, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		w.version, w.err = e.waitReady(ctx, id, tlsConfig, timeout)
		w.at = time.Now()
	}()
	return w
}

// result waits for the daemon's answer or the error that ended the wait.
func (w *readyWait) result() (innerdaemon.VersionInfo, time.Time, error) {
	<-w.done
	return w.version, w.at, w.err
}

// abandon ends the wait, when prepare fails elsewhere, and returns once it
// has ended.
func (w *readyWait) abandon() {
	w.stop()
	<-w.done
}

// describeVersion is what the daemon said of itself, for the job log.
func describeVersion(v innerdaemon.VersionInfo) string {
	switch {
	case v.Version == "":
		return "version unknown (its answer did not say)"
	case v.APIVersion != "":
		return "Docker Engine " + v.Version + " (API " + v.APIVersion + ")"
	}
	return "Docker Engine " + v.Version
}

func (e *docker) daemonStillRunning(ctx context.Context, id SandboxID) error {
	name := id.Name(RoleDaemon)
	res, err := e.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("inspect daemon container %s: %w", name, err)
	}
	if st := res.Container.State; st != nil && !st.Running {
		return fmt.Errorf("daemon container %s exited with code %d before it was ready%s", name, st.ExitCode, e.daemonLogTail(id))
	}
	return nil
}

// daemonLogTail is the daemon container's last log lines.
func (e *docker) daemonLogTail(id SandboxID) string { return e.logTail(id.Name(RoleDaemon)) }

// logTail fetches a container's last log lines with its own short
// deadline, since the caller's context is often the one that expired.
func (e *docker) logTail(container string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	logs, err := e.api.ContainerLogs(ctx, container, client.ContainerLogsOptions{
		ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(logTailLines),
	})
	if err != nil {
		return "; logs unavailable: " + err.Error()
	}
	defer logs.Close()
	var out bytes.Buffer
	// A line can be any length: what reaches the job log is bounded.
	if _, err := stdcopyBoth(&out, io.LimitReader(logs, maxLogTail)); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "; logs unavailable: " + err.Error()
	}
	text := strings.TrimSpace(out.String())
	if text == "" {
		return "; it logged nothing"
	}
	return "\nlast log lines of " + container + ":\n" + text
}

// stdcopyBoth demultiplexes a container stream into one writer.
func stdcopyBoth(w io.Writer, r io.Reader) (int64, error) { return stdcopy.StdCopy(w, w, r) }
