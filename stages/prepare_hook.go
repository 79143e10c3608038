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
	spec, err := h.Spec(id, job)
	if err != nil {
		return err
	}
	reportServices(h.Stdout, job.Services)
	sb, err := engine.Prepare(ctx, spec)
	// Whether or not this job took a warm daemon, the pool is topped up
	// for the next one.
	h.refillPool()
	err = h.auditPrepared(ctx, engine, id, job, spec, sb, err)
	if err != nil {
		return fmt.Errorf("prepare sandbox %s: %w", id.SandboxID, err)
	}
	fmt.Fprint(h.Stdout, poolNote(sb))
	h.Log.WithFields(map[string]any{
		"sandbox": id.SandboxID, "job": id.JobID, "project": id.ProjectID,
		"ready_after": sb.ReadyAfter.String(), "ca": sb.CAFingerprint, "pooled": sb.FromPool,
	}).Info("sandbox ready")
	return nil
}
