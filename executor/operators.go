package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// What the operator commands run beside the job lifecycle: gc of
// sandboxes and of cache volumes, and the warm pool.

// GCOptions say which sandboxes gc considers and removes.
type GCOptions struct {
	Policy  GCPolicy
	Sandbox SandboxID // only this one; "": all
	DryRun  bool
	// PerSandbox bounds one sandbox's teardown; gc then goes on with the
	// next one.
	PerSandbox time.Duration
}

// GCAction is what gc did with one sandbox.
type GCAction string

const (
	GCKeep        GCAction = "keep"
	GCWouldRemove GCAction = "would remove"
	GCRemoved     GCAction = "removed"
	GCFailed      GCAction = "failed"
)

// GCResult is one sandbox gc considered.
type GCResult struct {
	GCVerdict
	Action GCAction
}

// GC removes the sandboxes whose job is over (GCPolicy.Judge), each
// through the audited Teardown, and returns what it decided for every
// sandbox it considered. It goes on past a failed removal and joins the
// errors.
func (e *Engine) GC(ctx context.Context, o GCOptions) ([]GCResult, error) {
	sandboxes, err := e.m.sandboxes(ctx)
	if err != nil {
		return nil, err
	}
	var out []GCResult
	var errs []error
	for _, sb := range sandboxes {
		if o.Sandbox != "" && sb.Identity.SandboxID != o.Sandbox {
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("gc stopped: %w", context.Cause(ctx)))
			break
		}
		v, err := o.Policy.Judge(sb)
		if err != nil {
			return out, err
		}
		r := GCResult{GCVerdict: v, Action: GCKeep}
		switch {
		case v.Remove && o.DryRun:
			r.Action = GCWouldRemove
		case v.Remove:
			r.Action = GCRemoved
			if err := e.gcOne(ctx, sb.Identity.SandboxID, v.Reason, o.PerSandbox); err != nil {
				r.Action = GCFailed
				errs = append(errs, fmt.Errorf("remove sandbox %s: %w", sb.Identity.SandboxID, err))
			}
		}
		e.log.WithField("sandbox", sb.Identity.SandboxID).WithField("action", r.Action).Info(v.Reason)
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

func (e *Engine) gcOne(ctx context.Context, id SandboxID, reason string, bound time.Duration) error {
	if bound > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, bound)
		defer cancel()
	}
	_, err := e.Teardown(ctx, id, TeardownOptions{By: "gc", Reason: reason})
	return err
}

// CacheGCOptions say which project cache volumes gc removes.
type CacheGCOptions struct {
	UnusedFor time.Duration // remove volumes no job used for this long
	ProjectID int64         // only this project's; 0: all
	DryRun    bool
	Now       time.Time
}

// CacheGCResult is one cache volume gc considered.
type CacheGCResult struct {
	CacheVolume
	Action GCAction
	Idle   time.Duration
}

// GCCaches removes the project cache volumes (runner cache, layer cache)
// unused for longer than o.UnusedFor; a volume a running job mounts is
// never touched.
func (e *Engine) GCCaches(ctx context.Context, o CacheGCOptions) ([]CacheGCResult, error) {
	volumes, err := e.m.cacheVolumes(ctx, o.ProjectID)
	if err != nil {
		return nil, err
	}
	var out []CacheGCResult
	var errs []error
	for _, v := range volumes {
		r := CacheGCResult{CacheVolume: v, Action: GCKeep, Idle: o.Now.Sub(v.LastUsed)}
		switch {
		case v.InUse:
			r.Idle = 0
		case r.Idle < o.UnusedFor:
		case o.DryRun:
			r.Action = GCWouldRemove
		default:
			r.Action = GCRemoved
			if err := e.m.removeCacheVolume(ctx, v); err != nil {
				r.Action = GCFailed
				errs = append(errs, err)
			}
		}
		e.log.WithField("volume", v.Name).WithField("action", r.Action).Info("cache volume")
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// FillPool starts pooled daemons until [pool] size unclaimed ones exist
// and returns how many it started. One fill runs at a time per pool; a
// fill that finds another running returns at once.
func (e *Engine) FillPool(ctx context.Context, log io.Writer) (int, error) {
	return e.m.fillPool(ctx, e.settings, log)
}

// PoolReady counts the pooled daemons a job could take now.
func (e *Engine) PoolReady(ctx context.Context) (int, error) {
	return e.m.poolReady(ctx, e.settings)
}

// DrainPool tears down, audited, every pooled sandbox no job has taken
// (e.g. after the operator changed the daemon settings).
func (e *Engine) DrainPool(ctx context.Context) (Removed, error) {
	ids, err := e.m.unclaimedPooled(ctx, e.settings)
	if err != nil {
		return Removed{}, err
	}
	var all Removed
	var errs []error
	for _, id := range ids {
		removed, err := e.Teardown(ctx, id, TeardownOptions{By: "pool drain"})
		all.add(removed)
		errs = append(errs, err)
	}
	return all, errors.Join(errs...)
}
