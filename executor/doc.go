// Package executor builds, drives and tears down one job's sandbox on a
// Docker Engine: a private network, a Docker-in-Docker daemon reachable only
// with the job's client certificate, a build container, a helper container
// and the job's services. It speaks Docker only; it knows nothing of GitLab
// Runner's environment variables (package stages turns those into a Spec).
//
// # The lifecycle
//
// Engine (lifecycle.go) is the whole API; docker (docker.go and the files
// named after each step) does the Engine calls behind it. Every call takes a
// context and, after Prepare, the sandbox's id; no call keeps state between
// processes: every object's name and labels derive from the SandboxID, so
// each runner hook can be a fresh process. The Engine writes the audit trail
// itself (trail.go), so every path that makes or removes a sandbox records
// the same events.
//
//   - Prepare(ctx, Spec) creates everything and returns once the daemon
//     answers an authenticated /_ping, then records sandbox.created. It
//     takes a warm daemon when the pool has one (pool.go), else starts one
//     (daemon.go) on the project's layer cache when that is on
//     (layercache.go). On error it records sandbox.prepare_failed and leaves
//     what it made: the runner always calls cleanup next, and Teardown finds
//     it all by label.
//   - Exec(ctx, id, ExecOptions) runs one stage script in the build or helper
//     container (exec.go) and records stage.finished. Calls are sequential:
//     the runner runs one stage at a time. Cancelling ctx stops the stage's
//     processes inside the container (TERM, then KILL) before it returns.
//   - Teardown(ctx, id, TeardownOptions) records what the sandbox's daemon
//     produced, removes every object labelled with the id (teardown.go) and
//     records sandbox.destroyed. It is idempotent and safe after a failed or
//     partial Prepare; a sandbox already gone records nothing.
//   - Describe and Produced read a sandbox back: its containers' rights as
//     the Engine applied them, and what its daemon holds. Both are safe at
//     any time while the sandbox exists.
//   - GC (operators.go) tears down, through Teardown, the sandboxes whose
//     job is over (gc.go judges), each within its own deadline; GCCaches
//     removes project cache volumes no job used for a while (cachegc.go).
//   - FillPool, PoolReady and DrainPool keep the warm pool. A fill may run
//     while jobs prepare and other fills start: one fill at a time holds the
//     pool's lock, and a job claims a pooled daemon atomically (marker.go).
//
// Jobs run concurrently, each in its own sandbox; nothing one sandbox's
// calls do touches another's objects. Project cache volumes are the only
// objects shared between sandboxes, and they are claimed (layer cache) or
// shared by design (the runner cache).
package executor
