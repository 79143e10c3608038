package executor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// The executor reaches a sandbox's daemon through the Engine connection
// itself, whatever it is (a local socket, tcp+TLS, ssh), never by dialling
// an address on a job bridge, which only a process in the Engine host's
// own network namespace can route to (a runner in a container cannot, nor
// one talking to a remote Engine). Each connection is an exec in the
// daemon container of a relay from its stdin and stdout to the daemon's
// port; mutual TLS runs end to end over it, from the executor's memory.

// relayCommand connects stdin and stdout to host:port inside a container,
// with nc as the image has it (docker:dind's busybox), else busybox's. It
// keeps trying to connect for wait, so a connection asked for while
// dockerd starts goes through the moment its port opens, without another
// exec; what the client wrote meanwhile waits in the pipe.
func relayCommand(host string, port int, wait time.Duration) []string {
	const script = `nc=nc; command -v nc >/dev/null 2>&1 || nc="busybox nc"
i=0; while [ $i -lt "$2" ]; do $nc "$0" "$1" 2>/dev/null && exit 0; i=$((i+1)); sleep 0.05; done
echo "nothing accepts connections on $0:$1" >&2; exit 1`
	tries := max(1, int(wait/relayRetryInterval))
	return []string{"sh", "-c", script, host, strconv.Itoa(port), strconv.Itoa(tries)}
}

// relayRetryInterval is the relay's pause between connection attempts (the
// script's sleep).
const relayRetryInterval = 50 * time.Millisecond

// relayConnectWait is how long a relay to a running daemon (what the job
// produced, the layer-cache prune) waits for its port: a daemon the job
// stopped must not hold the hook.
const relayConnectWait = 2 * time.Second

// maxRelayStderr bounds what a relay may say on stderr; it is kept for the
// error when the stream ends before anything came back.
const maxRelayStderr = 4 << 10

// dialInContainer opens a byte stream to host:port as seen from inside the
// container, through the Engine API.
func (e *docker) dialInContainer(ctx context.Context, container, host string, port int, wait time.Duration) (net.Conn, error) {
	created, err := e.api.ExecCreate(ctx, container, client.ExecCreateOptions{
		User: "0", AttachStdin: true, AttachStdout: true, AttachStderr: true, Cmd: relayCommand(host, port, wait),
	})
	if err != nil {
		return nil, fmt.Errorf("start a relay to %s:%d in %s: %w", host, port, container, err)
	}
	attached, err := e.api.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return nil, fmt.Errorf("attach the relay to %s:%d in %s: %w", host, port, container, err)
	}
	pr, pw := io.Pipe()
	c := &execConn{Conn: attached.Conn, out: pr}
	go func() {
		stderr := &boundedBuffer{max: maxRelayStderr}
		_, err := stdcopy.StdCopy(pw, stderr, attached.Reader)
		if err == nil && stderr.Len() > 0 {
			err = fmt.Errorf("relay to %s:%d in %s: %s", host, port, container, bytes.TrimSpace(stderr.Bytes()))
		}
		pw.CloseWithError(err)
	}()
	return c, nil
}

// execConn is a relay exec as a connection: writes go to its stdin, reads
// come from its stdout.
type execConn struct {
	net.Conn
	out *io.PipeReader
}

func (c *execConn) Read(p []byte) (int, error) { return c.out.Read(p) }

func (c *execConn) Close() error {
	c.out.Close()
	return c.Conn.Close()
}

// boundedBuffer keeps the first max bytes written to it.
type boundedBuffer struct {
	bytes.Buffer
	max int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// daemonDialer dials the sandbox's daemon port through the Engine, for an
// HTTP transport (its address argument is only the TLS server name's); the
// relay waits up to wait for the port to open.
func (e *docker) daemonDialer(id SandboxID, wait time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		return e.dialInContainer(ctx, id.Name(RoleDaemon), "127.0.0.1", DaemonTLSPort, wait)
	}
}

// runInContainer runs a short command of the executor's own as root in a
// container and returns its exit code; at most maxRelayStderr bytes of its
// output are kept in out.
func (e *docker) runInContainer(ctx context.Context, container string, out *bytes.Buffer, cmd ...string) (int, error) {
	created, err := e.api.ExecCreate(ctx, container, client.ExecCreateOptions{User: "0", AttachStdout: true, AttachStderr: true, Cmd: cmd})
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", container, err)
	}
	attached, err := e.api.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return 0, fmt.Errorf("attach exec in %s: %w", container, err)
	}
	stop := context.AfterFunc(ctx, func() { attached.Close() })
	defer stop()
	kept := &boundedBuffer{max: maxRelayStderr}
	_, err = stdcopy.StdCopy(kept, kept, attached.Reader)
	attached.Close()
	out.Write(kept.Bytes())
	if err != nil {
		return 0, fmt.Errorf("read exec output in %s: %w", container, err)
	}
	return e.execExitCode(ctx, created.ID)
}
