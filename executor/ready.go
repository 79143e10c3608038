package executor

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"gitlab.com/dind-executor/dind-executor/executor/innerdaemon"
)

const (
	readyPollInterval = 50 * time.Millisecond
	readyAttemptLimit = 2 * time.Second
	logTailLines      = 20
	maxLogTail        = 16 << 10
)

// daemonAddress is where the executor reaches the job's daemon: its address
// on the one network it is attached to (the job's, or the network it was
// pooled with), which a local Engine's host can route to.
func (e *docker) daemonAddress(ctx context.Context, id SandboxID) (string, error) {
	name := id.Name(RoleDaemon)
	res, err := e.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspect daemon container %s: %w", name, err)
	}
	for _, ep := range res.Container.NetworkSettings.Networks {
		if ep != nil && ep.IPAddress.IsValid() {
			return net.JoinHostPort(ep.IPAddress.String(), strconv.Itoa(DaemonTLSPort)), nil
		}
	}
	return "", fmt.Errorf("daemon container %s has no network address", name)
}

// waitReady polls the daemon's /_ping over mutual TLS until it answers OK,
// and returns the address that answered. A TCP connect is not enough:
// dockerd opens its port before it serves. It stops at once when the
// daemon container exits, and its errors carry the daemon's last log lines
// so the operator sees why.
func (e *docker) waitReady(ctx context.Context, id SandboxID, tlsConfig *tls.Config, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	attempts := 0
	var lastErr error
	addr := id.Name(RoleDaemon)
	// notReady is the error once the deadline passed, whatever call it
	// interrupted: the operator needs the timeout and the daemon's logs.
	notReady := func() error {
		return fmt.Errorf("daemon at %s not ready over mutual TLS after %s (%d attempts, last error: %v; raise [sandbox] ready_timeout if the host is slow)%s",
			addr, timeout, attempts, lastErr, e.daemonLogTail(id))
	}

	ip, err := e.daemonAddress(ctx, id)
	if err != nil {
		lastErr = err
		if ctx.Err() != nil {
			return "", notReady()
		}
		// An exited container has no address: say why it exited instead.
		if exited := e.daemonStillRunning(ctx, id); exited != nil {
			return "", exited
		}
		return "", fmt.Errorf("%w%s", err, e.daemonLogTail(id))
	}
	addr = ip
	httpClient := innerdaemon.HTTPClient(tlsConfig, readyAttemptLimit)
	for {
		attempts++
		lastErr = innerdaemon.Ping(ctx, httpClient, addr)
		if lastErr == nil {
			return addr, nil
		}
		if attempts%10 == 0 {
			if err := e.daemonStillRunning(ctx, id); err != nil {
				if ctx.Err() != nil {
					return "", notReady()
				}
				return "", err
			}
		}
		select {
		case <-ctx.Done():
			return "", notReady()
		case <-time.After(readyPollInterval):
		}
	}
}

// daemonVersion is the version the ready daemon at addr reports, for the
// job log; a daemon that does not say is not an error.
func daemonVersion(ctx context.Context, addr string, tlsConfig *tls.Config) string {
	v, err := innerdaemon.Version(ctx, innerdaemon.HTTPClient(tlsConfig, readyAttemptLimit), addr)
	switch {
	case err != nil:
		return "version unknown (" + err.Error() + ")"
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
