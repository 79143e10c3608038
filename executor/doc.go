// Package executor builds, drives and tears down one job's sandbox on a
// Docker Engine: a private network, a Docker-in-Docker daemon reachable only
// with the job's client certificate, a build container and a helper
// container. It speaks Docker only; it knows nothing of GitLab Runner's
// environment variables (package stages translates those into a Spec).
//
// Lifecycle contract, in call order:
//
//   - Prepare creates everything for a Spec and returns once the daemon
//     answers an authenticated /_ping. On error it leaves what it created in
//     place: the runner always calls cleanup afterwards, and Teardown finds
//     it all by label.
//   - Exec runs one stage script in the build or helper container. Calls are
//     sequential (the runner runs one stage at a time). Cancelling its context
//     stops the stage's processes inside the container before it returns.
//   - Teardown removes every object carrying the sandbox's label. It is safe
//     after a failed or partial Prepare, and a second call succeeds and
//     removes nothing.
//
// No call keeps state between processes: every object's name and labels are
// derived from the sandbox id, so each runner hook can be a fresh process.
package executor
