package executor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// fleet is the mechanics of several Engines behind one runner ([engine]
// hosts). prepare places each new sandbox on one Engine (placement.go);
// every later call finds the Engine that holds the sandbox by asking them
// all, because the hooks are separate processes that keep no state: the
// sandbox ID, recomputed from the job by each hook, is the only key. The
// operator's views (sandboxes, pool, cache volumes) are the union over the
// Engines that answer; one that does not is logged and left out.
type fleet struct {
	members []member
	log     logrus.FieldLogger

	mu    sync.Mutex // held while locating, so concurrent calls ask once
	found map[SandboxID]member
}

// member is one Engine of a fleet; *docker is the real one.
type member interface {
	mechanics
	name() string
	memory(ctx context.Context) (int64, error)
	sandboxCount(ctx context.Context) (int, error)
	mark(ctx context.Context, id Identity) error
}

func (e *docker) name() string { return e.endpoint }

// memberTimeout bounds asking one Engine where a sandbox is or how loaded
// it is: a build host that is down must not hold up jobs on the others
// (a TCP connect to a dead host can hang for minutes).
const memberTimeout = 10 * time.Second

func newFleet(members []member, log logrus.FieldLogger) *fleet {
	return &fleet{members: members, log: log, found: map[SandboxID]member{}}
}

// each calls f for every member at once, each bounded by memberTimeout,
// and returns the results in the members' order.
func each[T any](ctx context.Context, f *fleet, call func(ctx context.Context, m member) (T, error)) ([]T, []error) {
	return eachWithin(ctx, f, memberTimeout, call)
}

// eachWithin is each with another bound; 0: only ctx's.
func eachWithin[T any](ctx context.Context, f *fleet, bound time.Duration, call func(ctx context.Context, m member) (T, error)) ([]T, []error) {
	out := make([]T, len(f.members))
	errs := make([]error, len(f.members))
	var wg sync.WaitGroup
	for i, m := range f.members {
		wg.Go(func() {
			mctx := ctx
			if bound > 0 {
				var cancel context.CancelFunc
				mctx, cancel = context.WithTimeout(ctx, bound)
				defer cancel()
			}
			out[i], errs[i] = call(mctx, m)
		})
	}
	wg.Wait()
	return out, errs
}

// answering logs the Engines that did not answer and fails only when none
// did: an operator's view of the others is still worth having.
func (f *fleet) answering(what string, errs []error) error {
	var failed []error
	for i, err := range errs {
		if err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", f.members[i].name(), err))
			f.log.WithError(err).WithField("engine", f.members[i].name()).Warnf("%s: this Engine is left out", what)
		}
	}
	if len(failed) == len(f.members) {
		return fmt.Errorf("%s: no Docker Engine of [engine] hosts answers: %w", what, errors.Join(failed...))
	}
	return nil
}

func (f *fleet) Close() error {
	var errs []error
	for _, m := range f.members {
		errs = append(errs, m.Close())
	}
	return errors.Join(errs...)
}

// ping succeeds once one Engine answers: the fleet can serve. The others'
// answers are not waited for (a hung one would cost every call its bound).
func (f *fleet) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, memberTimeout)
	defer cancel()
	errs := make(chan error, len(f.members))
	for _, m := range f.members {
		go func() {
			if err := m.ping(ctx); err != nil {
				errs <- fmt.Errorf("%s: %w", m.name(), err)
				return
			}
			errs <- nil
		}()
	}
	var failed []error
	for range f.members {
		err := <-errs
		if err == nil {
			return nil
		}
		failed = append(failed, err)
	}
	return fmt.Errorf("no Docker Engine of [engine] hosts answers: %w", errors.Join(failed...))
}

// placementWait bounds the wait for other hooks' placements; past it a
// job is placed without the lock rather than not at all.
const placementWait = 30 * time.Second

// prepare places the sandbox on the least loaded Engine that answers.
func (f *fleet) prepare(ctx context.Context, p plan) (*Sandbox, error) {
	m, why, err := f.place(ctx, p)
	if err != nil {
		return nil, err
	}
	sb, err := m.prepare(ctx, p)
	if sb != nil {
		sb.Placement = why
	}
	return sb, err
}

// place chooses the Engine and marks the sandbox there, under the
// placement lock.
func (f *fleet) place(ctx context.Context, p plan) (member, string, error) {
	names := make([]string, len(f.members))
	for i, m := range f.members {
		names[i] = m.name()
	}
	// Memory is asked for before the lock and read meanwhile, or taken
	// from the notes of an earlier prepare: it does not change as
	// sandboxes come and go, and /info is an Engine's slow answer (dockerd
	// asks its runtimes for their versions: ~40 ms), which would otherwise
	// hold up every other prepare waiting for the lock.
	var mems []int64
	var memErrs []error
	memRead := make(chan struct{})
	go func() {
		defer close(memRead)
		mems, memErrs = f.memories(ctx, memoryNotesFor(placementLockDir, names))
	}()
	lctx, cancel := context.WithTimeout(ctx, placementWait)
	unlock, err := placementLock(lctx, names)
	cancel()
	if err != nil {
		f.log.WithError(err).Warn("placing the sandbox without the placement lock")
	} else {
		defer unlock()
	}
	counts, countErrs := each(ctx, f, func(ctx context.Context, m member) (int, error) { return m.sandboxCount(ctx) })
	<-memRead
	cands := make([]candidate, len(f.members))
	for i, m := range f.members {
		cands[i] = candidate{engine: m.name(), load: engineLoad{Sandboxes: counts[i], MemTotal: mems[i]}, err: cmp.Or(memErrs[i], countErrs[i])}
		if cands[i].err != nil {
			f.log.WithError(cands[i].err).WithField("engine", m.name()).Warn("Docker Engine skipped: it does not answer")
		}
	}
	best, why, err := choose(p.Identity.SandboxID, cands)
	if err != nil {
		return nil, "", err
	}
	m := f.members[best]
	f.remember(p.Identity.SandboxID, m)
	if err := m.mark(ctx, p.Identity); err != nil {
		return nil, "", fmt.Errorf("place sandbox %s on %s: %w", p.Identity.SandboxID, m.name(), err)
	}
	return m, why, nil
}

// memories is each Engine's memory, from the notes when they have it,
// else asked of the Engine; what was asked is noted for the next prepare.
func (f *fleet) memories(ctx context.Context, notes memoryNotes) ([]int64, []error) {
	noted := notes.read(time.Now())
	mems, errs := each(ctx, f, func(ctx context.Context, m member) (int64, error) {
		if mem := noted[m.name()]; mem > 0 {
			return mem, nil
		}
		return m.memory(ctx)
	})
	if answered := answeredMemories(f.members, mems, errs); !maps.Equal(noted, answered) {
		if err := notes.write(answered); err != nil {
			f.log.WithError(err).Debug("could not note the Engines' memory for the next prepare")
		}
	}
	return mems, errs
}

func answeredMemories(members []member, mems []int64, errs []error) map[string]int64 {
	answered := map[string]int64{}
	for i, m := range members {
		if errs[i] == nil && mems[i] > 0 {
			answered[m.name()] = mems[i]
		}
	}
	return answered
}

func (f *fleet) remember(id SandboxID, m member) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.found[id] = m
}

// locate finds the Engine that holds sandbox id. When no Engine holds
// anything of it and all answered, the first one stands in: every call
// then behaves as on one Engine where the sandbox is gone (teardown finds
// nothing to remove, exec says the container does not exist). When the
// sandbox may be on an Engine that does not answer, it fails and says so.
func (f *fleet) locate(ctx context.Context, id SandboxID) (member, SandboxInfo, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m, ok := f.found[id]; ok {
		return m, SandboxInfo{}, false, nil
	}
	// The first Engine that holds it ends the search: one that does not
	// answer must not cost the hook its whole bound.
	type answer struct {
		i    int
		info SandboxInfo
		ok   bool
		err  error
	}
	sctx, cancel := context.WithTimeout(ctx, memberTimeout)
	defer cancel()
	answers := make(chan answer, len(f.members))
	for i, m := range f.members {
		go func() {
			info, ok, err := m.sandboxByID(sctx, id)
			answers <- answer{i, info, ok, err}
		}()
	}
	errs := make([]error, len(f.members))
	for range f.members {
		a := <-answers
		if a.ok {
			f.found[id] = f.members[a.i]
			return f.members[a.i], a.info, true, nil
		}
		errs[a.i] = a.err
	}
	var failed []error
	for i, err := range errs {
		if err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", f.members[i].name(), err))
		}
	}
	if len(failed) > 0 {
		return nil, SandboxInfo{}, false, fmt.Errorf("sandbox %s is on none of the Docker Engines that answer, and %d do not (it may be there; "+
			"gc removes it once that Engine is back): %w", id, len(failed), errors.Join(failed...))
	}
	return f.members[0], SandboxInfo{Identity: Identity{SandboxID: id}, Engine: f.members[0].name()}, false, nil
}

// holder is locate for the calls that need only the Engine.
func (f *fleet) holder(ctx context.Context, id SandboxID) (member, error) {
	m, _, _, err := f.locate(ctx, id)
	return m, err
}

func (f *fleet) exec(ctx context.Context, id SandboxID, o ExecOptions) (ExecResult, error) {
	m, err := f.holder(ctx, id)
	if err != nil {
		return ExecResult{ExitCode: -1}, err
	}
	return m.exec(ctx, id, o)
}

func (f *fleet) containerIdentity(ctx context.Context, id SandboxID, role Role) (Identity, error) {
	m, err := f.holder(ctx, id)
	if err != nil {
		return Identity{}, err
	}
	return m.containerIdentity(ctx, id, role)
}

// explainExecFailure asks the Engine the stage ran on; exec has found it.
func (f *fleet) explainExecFailure(id SandboxID, role Role, exitCode int) string {
	f.mu.Lock()
	m, ok := f.found[id]
	f.mu.Unlock()
	if !ok {
		return ""
	}
	return m.explainExecFailure(id, role, exitCode)
}

func (f *fleet) teardown(ctx context.Context, id SandboxID, ask context.Context) (teardownResult, error) {
	m, err := f.holder(ctx, id)
	if err != nil {
		return teardownResult{}, err
	}
	return m.teardown(ctx, id, ask)
}

func (f *fleet) describe(ctx context.Context, id SandboxID) (Description, error) {
	m, err := f.holder(ctx, id)
	if err != nil {
		return Description{}, err
	}
	return m.describe(ctx, id)
}

func (f *fleet) produced(ctx context.Context, id SandboxID) (Produced, error) {
	m, err := f.holder(ctx, id)
	if err != nil {
		return Produced{}, err
	}
	return m.produced(ctx, id)
}

func (f *fleet) sandboxByID(ctx context.Context, id SandboxID) (SandboxInfo, bool, error) {
	m, info, ok, err := f.locate(ctx, id)
	if err != nil || ok || m == nil {
		return info, ok, err
	}
	// Found earlier in this process: ask again, the sandbox may have changed.
	return m.sandboxByID(ctx, id)
}

func (f *fleet) sandboxes(ctx context.Context) ([]SandboxInfo, error) {
	lists, errs := each(ctx, f, func(ctx context.Context, m member) ([]SandboxInfo, error) { return m.sandboxes(ctx) })
	if err := f.answering("list sandboxes", errs); err != nil {
		return nil, err
	}
	all := slices.Concat(lists...)
	slices.SortStableFunc(all, func(a, b SandboxInfo) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.Identity.SandboxID, b.Identity.SandboxID)
	})
	return all, nil
}

// fillPool fills every Engine's pool: [pool] size is per Engine, so a job
// finds a warm daemon wherever it is placed.
func (f *fleet) fillPool(ctx context.Context, s Settings, log io.Writer) (int, error) {
	var mu sync.Mutex // log is shared by the fills
	started, errs := eachWithin(ctx, f, 0, func(ctx context.Context, m member) (int, error) {
		return m.fillPool(ctx, s, lockedWriter{w: log, mu: &mu})
	})
	total := 0
	for _, n := range started {
		total += n
	}
	return total, f.joined(errs)
}

func (f *fleet) poolReady(ctx context.Context, s Settings) (int, error) {
	ready, errs := each(ctx, f, func(ctx context.Context, m member) (int, error) { return m.poolReady(ctx, s) })
	total := 0
	for _, n := range ready {
		total += n
	}
	return total, f.answering("count pooled daemons", errs)
}

func (f *fleet) unclaimedPooled(ctx context.Context, s Settings) ([]SandboxID, error) {
	lists, errs := each(ctx, f, func(ctx context.Context, m member) ([]SandboxID, error) { return m.unclaimedPooled(ctx, s) })
	return slices.Concat(lists...), f.answering("list pooled daemons", errs)
}

func (f *fleet) cacheVolumes(ctx context.Context, projectID int64) ([]CacheVolume, error) {
	lists, errs := each(ctx, f, func(ctx context.Context, m member) ([]CacheVolume, error) { return m.cacheVolumes(ctx, projectID) })
	return slices.Concat(lists...), f.answering("list cache volumes", errs)
}

// removeCacheVolume removes the volume from the Engine it was listed on:
// each Engine has its own copy of a project's caches.
func (f *fleet) removeCacheVolume(ctx context.Context, v CacheVolume) error {
	for _, m := range f.members {
		if m.name() == v.Engine {
			return m.removeCacheVolume(ctx, v)
		}
	}
	return fmt.Errorf("remove cache volume %s: no Engine %q in [engine] hosts", v.Name, v.Engine)
}

// joined names each Engine's error.
func (f *fleet) joined(errs []error) error {
	var named []error
	for i, err := range errs {
		if err != nil {
			named = append(named, fmt.Errorf("%s: %w", f.members[i].name(), err))
		}
	}
	return errors.Join(named...)
}

// lockedWriter lets several goroutines write whole lines to one writer.
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
