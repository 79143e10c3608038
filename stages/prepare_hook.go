package stages

import (
	"context"
	"fmt"
)

// PrepareHook builds the job's sandbox. Any error is a system failure; the
// runner then calls cleanup and retries with a fresh attempt.
func (h *Hooks) PrepareHook(ctx context.Context) error {
	id, job, err := h.identity()
	if err != nil {
		return err
	}
	engine, err := h.Connect()
	if err != nil {
		return err
	}
	defer engine.Close()
	fmt.Fprintf(h.Stdout, "Preparing dind-executor sandbox %s for job %d (project %d)\n", id.SandboxID, id.JobID, id.ProjectID)
	spec, notes, err := h.spec(id, job)
	if err != nil {
		return err
	}
	reportServices(h.Stdout, job.Services)
	for _, n := range notes {
		fmt.Fprintln(h.Stdout, n)
	}
	sb, err := engine.Prepare(ctx, spec)
	// Whether or not this job took a warm daemon, the pool is topped up
	// for the next one.
	h.refillPool()
	if err != nil {
		return fmt.Errorf("prepare sandbox %s: %w", id.SandboxID, err)
	}
	if sb.Placement != "" {
		fmt.Fprintf(h.Stdout, "Sandbox %s placed on %s\n", id.SandboxID, sb.Placement)
	}
	if sb.FromPool != "" {
		fmt.Fprintf(h.Stdout, "Sandbox %s runs on pooled daemon %s\n", id.SandboxID, sb.FromPool)
	}
	h.Log.WithFields(map[string]any{
		"sandbox": id.SandboxID, "engine": sb.Engine, "job": id.JobID, "project": id.ProjectID,
		"ready_after": sb.ReadyAfter.String(), "ca": sb.CA.Fingerprint, "pooled": sb.FromPool,
	}).Info("sandbox ready")
	return nil
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
