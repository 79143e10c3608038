package stages

import (
	"fmt"

	"gitlab.com/dind-executor/dind-executor/config"
	"gitlab.com/dind-executor/dind-executor/executor"
)

// PoolSpec is the kind of daemon the operator's config asks for; the warm
// pool holds daemons of exactly this kind, and a job's Spec matches it.
func PoolSpec(c config.Config) executor.PoolSpec {
	pull := make([]executor.PullPolicy, 0, len(c.Sandbox.PullPolicy))
	for _, p := range c.Sandbox.PullPolicy {
		pull = append(pull, executor.PullPolicy(p))
	}
	security := executor.SecurityPrivileged
	if c.Sandbox.DaemonSecurity == config.DaemonSecurityCapabilities {
		security = executor.SecurityCapabilities
	}
	return executor.PoolSpec{
		DaemonImage:    executor.ImageRef{Name: c.Sandbox.DindImage, Pull: pull},
		DaemonSecurity: security,
		MTU:            c.Sandbox.MTU,
		ReadyTimeout:   c.Sandbox.ReadyTimeout.Duration,
		Limits: executor.Limits{
			NanoCPUs:    c.Limits.NanoCPUs(),
			MemoryBytes: c.Limits.MemoryBytes,
			Pids:        c.Limits.PIDs,
		},
	}
}

// refillPool asks for the pool to be topped up after a prepare; a failure
// to start the refill only costs the next job its warm start.
func (h *Hooks) refillPool() {
	if h.Config.Pool.Size == 0 || h.RefillPool == nil {
		return
	}
	if err := h.RefillPool(); err != nil {
		h.Log.WithError(err).Warn("start warm pool refill")
	}
}

// poolNote is the job-log line about the pool for a prepared sandbox.
func poolNote(sb *executor.Sandbox) string {
	if sb.FromPool == "" {
		return ""
	}
	return fmt.Sprintf("Sandbox %s runs on pooled daemon %s\n", sb.Identity.SandboxID, sb.FromPool)
}
