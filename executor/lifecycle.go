package executor

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// Options configure an Engine: which Docker Engine, the operator's
// sandbox settings, and where the audit trail goes.
type Options struct {
	// Hosts are the Engine endpoints (unix://, tcp://, ssh://); none:
	// DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH or the local socket.
	// With several, each sandbox is placed on one of them (fleet.go).
	Hosts []string
	// TLS, when set, connects to tcp:// Hosts over TLS with its files.
	TLS      *EngineTLS
	Settings Settings
	Audit    AuditSink // nil: no records are written
	// RunnerHost is this machine's name, stamped on every record.
	RunnerHost string
	Version    string // the executor's, for the trail
	Log        logrus.FieldLogger
	Now        func() time.Time // nil: time.Now
}

// Engine is the sandbox lifecycle on one Docker Engine: the only API the
// hooks and the operator commands use. It writes the audit trail itself,
// so every path that makes or removes a sandbox (cleanup, gc, the pool)
// records the same events. The contract of each call is in the package
// documentation (doc.go).
type Engine struct {
	m        mechanics
	settings Settings
	trail    trail
	log      logrus.FieldLogger
}

// mechanics is the Docker work behind an Engine; *docker is the real one.
// Tests of what the Engine records put a fake in its place.
type mechanics interface {
	Close() error
	ping(ctx context.Context) error
	prepare(ctx context.Context, p plan) (*Sandbox, error)
	exec(ctx context.Context, id SandboxID, o ExecOptions) (ExecResult, error)
	containerIdentity(ctx context.Context, id SandboxID, role Role) (Identity, error)
	explainExecFailure(id SandboxID, role Role, exitCode int) string
	teardown(ctx context.Context, id SandboxID, ask context.Context) (teardownResult, error)
	describe(ctx context.Context, id SandboxID) (Description, error)
	produced(ctx context.Context, id SandboxID) (Produced, error)
	sandboxByID(ctx context.Context, id SandboxID) (SandboxInfo, bool, error)
	sandboxes(ctx context.Context) ([]SandboxInfo, error)
	fillPool(ctx context.Context, s Settings, log io.Writer) (int, error)
	poolReady(ctx context.Context, s Settings) (int, error)
	unclaimedPooled(ctx context.Context, s Settings) ([]SandboxID, error)
	cacheVolumes(ctx context.Context, projectID int64) ([]CacheVolume, error)
	removeCacheVolume(ctx context.Context, v CacheVolume) error
}

// Connect opens the Engine that o names. It does not contact it yet.
func Connect(o Options) (*Engine, error) {
	log := o.Log
	if log == nil {
		log = logrus.New()
	}
	if len(o.Hosts) <= 1 {
		d, err := dial(first(o.Hosts), o.TLS, log)
		if err != nil {
			return nil, err
		}
		return newEngine(d, o), nil
	}
	members := make([]member, 0, len(o.Hosts))
	for _, host := range o.Hosts {
		tls := o.TLS
		if !strings.HasPrefix(host, "tcp://") {
			tls = nil // TLS files are for the tcp:// Engines of the list
		}
		d, err := dial(host, tls, log)
		if err != nil {
			for _, m := range members {
				m.Close()
			}
			return nil, err
		}
		members = append(members, d)
	}
	return newEngine(newFleet(members, log), o), nil
}

func newEngine(m mechanics, o Options) *Engine {
	log := o.Log
	if log == nil {
		log = logrus.New()
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Engine{m: m, settings: o.Settings, log: log,
		trail: trail{sink: o.Audit, log: log, host: o.RunnerHost, version: o.Version, now: now}}
}

func first(hosts []string) string {
	if len(hosts) == 0 {
		return ""
	}
	return hosts[0]
}

// Close releases the client's connections.
func (e *Engine) Close() error { return e.m.Close() }

// Ping checks the Engine answers.
func (e *Engine) Ping(ctx context.Context) error { return e.m.ping(ctx) }

// Prepare builds the sandbox for s and returns once its daemon answers an
// authenticated /_ping. It records sandbox.created (or
// sandbox.prepare_failed); when the created record cannot be written it
// fails: no job runs unaudited. On error whatever was made stays for
// Teardown.
func (e *Engine) Prepare(ctx context.Context, s Spec) (*Sandbox, error) {
	p := plan{Settings: e.settings, Spec: s}
	sb, err := e.m.prepare(ctx, p)
	if err != nil {
		e.trail.prepareFailed(s.Identity, err)
		return nil, err
	}
	desc, derr := e.m.describe(ctx, s.Identity.SandboxID)
	if err := e.trail.created(p, sb, desc, derr); err != nil {
		return nil, err
	}
	return sb, nil
}

// Exec runs one stage in the sandbox and records stage.finished. A
// non-zero ExitCode is the script's own failure; an error is the
// sandbox's, and says what became of the sandbox when the Engine knows
// (restarted, container gone or stopped). Cancelling ctx stops the stage's
// processes (TERM, then KILL) before Exec returns.
func (e *Engine) Exec(ctx context.Context, id SandboxID, o ExecOptions) (ExecResult, error) {
	// Which job this is comes from the container's labels, read while the
	// stage runs so it costs the stage no time.
	job := make(chan Identity, 1)
	go func() {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), labelReadTimeout)
		defer cancel()
		ident, _ := e.m.containerIdentity(lctx, id, o.Role)
		job <- ident
	}()
	res, err := e.m.exec(ctx, id, o)
	err = e.explain(id, o.Role, res, err)
	ident := <-job
	ident.SandboxID = id
	e.trail.stage(ident, o, res, err)
	return res, err
}

// labelReadTimeout bounds reading a container's labels for the trail.
const labelReadTimeout = 5 * time.Second

// explain adds to a failed stage what the Engine says happened to the
// sandbox. A script that exited non-zero because its container was
// stopped under it (an Engine restart kills every process: 137) did not
// fail by itself: that is the sandbox's failure too.
func (e *Engine) explain(id SandboxID, role Role, res ExecResult, err error) error {
	// A stage we stopped ourselves (cancel, timeout) needs no inquest:
	// the hook must be gone at once.
	if err == nil && (res.ExitCode == 0 || res.Canceled) {
		return nil
	}
	why := e.m.explainExecFailure(id, role, res.ExitCode)
	switch {
	case why == "":
		return err
	case err == nil:
		return fmt.Errorf("the script ended with code %d because %s", res.ExitCode, why)
	default:
		return fmt.Errorf("%w: %s", err, why)
	}
}

// TeardownOptions say who removes a sandbox and why, for the trail.
type TeardownOptions struct {
	By     string // "cleanup", "gc", "pool drain"
	Reason string
}

// engineWait bounds how long a teardown waits for an Engine that does not
// answer: one that restarts is back within seconds, and cleanup has
// minutes. Past it, teardown fails and gc removes the sandbox later.
const engineWait = time.Minute

// producedTimeout bounds asking the job's daemon what it produced: a hung
// daemon must not eat the teardown's own time.
const producedTimeout = 30 * time.Second

// Teardown removes every object of the sandbox. Before, it records what
// the sandbox's daemon produced (sandbox.produced); after, what was
// removed (sandbox.destroyed). It is idempotent and safe after a failed
// or partial Prepare: a sandbox already gone records nothing and succeeds.
// When ctx ends (a signal, the caller's deadline) the inventory stops at
// once and the removal goes on for TeardownGrace, then stops too. Audit
// failures are logged; only the removal's own error is returned.
func (e *Engine) Teardown(ctx context.Context, id SandboxID, o TeardownOptions) (Removed, error) {
	rctx, cancel := withGrace(ctx, TeardownGrace)
	defer cancel()
	e.waitForEngine(ctx)
	info, exists, err := e.m.sandboxByID(rctx, id)
	if err != nil {
		exists = false
	}
	ident := info.Identity
	ident.SandboxID = id
	// The daemon is asked what it produced only while ctx lasts: after a
	// signal, the grace is for removing.
	var ask context.Context
	if exists && ctx.Err() == nil {
		ask = ctx
	}
	res, err := e.m.teardown(rctx, id, ask)
	if res.asked {
		e.trail.produced(ident, res.produced, res.producedErr)
	}
	removed := res.Removed
	if !exists && err == nil && removed.empty() {
		return removed, nil // nothing was there: a second cleanup, or after gc
	}
	e.trail.destroyed(ident, info.Created, o, removed, err)
	return removed, err
}

func (e *Engine) waitForEngine(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, engineWait)
	defer cancel()
	for i := 0; e.m.ping(ctx) != nil; i++ {
		if i == 0 {
			e.log.Warnf("the Docker Engine does not answer; waiting up to %s for it before teardown", engineWait)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Describe reads the sandbox's containers back from the Engine: the
// images, rights and limits it actually applied.
func (e *Engine) Describe(ctx context.Context, id SandboxID) (Description, error) {
	return e.m.describe(ctx, id)
}

// Produced asks the sandbox's own daemon what it holds: what the job
// built, pulled, pushed and ran. Call it before Teardown.
func (e *Engine) Produced(ctx context.Context, id SandboxID) (Produced, error) {
	return e.m.produced(ctx, id)
}

// Sandboxes lists every sandbox on the Engine, oldest first.
func (e *Engine) Sandboxes(ctx context.Context) ([]SandboxInfo, error) { return e.m.sandboxes(ctx) }

// Sandbox is one sandbox's inventory; ok is false when nothing of it exists.
func (e *Engine) Sandbox(ctx context.Context, id SandboxID) (SandboxInfo, bool, error) {
	return e.m.sandboxByID(ctx, id)
}
