package stages

import (
	"context"
	"fmt"
	"os"

	"gitlab.com/dind-executor/dind-executor/executor"
)

// RunHook runs one stage script (a file on the runner host, in the runner's
// temp dir) in the container the stage belongs to. A non-zero script exit
// is a BuildFailure; a problem with the sandbox is a system failure.
func (h *Hooks) RunHook(ctx context.Context, scriptPath, stage string) error {
	sandboxID, err := h.sandboxID()
	if err != nil {
		return err
	}
	// The script holds every job variable in plain text: it is streamed
	// from the runner's file into the container, never copied elsewhere.
	script, err := os.Open(scriptPath)
	if err != nil {
		return fmt.Errorf("open stage script for %s: %w", stage, err)
	}
	defer script.Close()

	engine, err := h.Connect()
	if err != nil {
		return err
	}
	defer engine.Close()
	role := ContainerFor(stage)
	res, err := engine.Exec(ctx, sandboxID, executor.ExecOptions{Stage: stage, Role: role, Script: script, Stdout: h.Stdout, Stderr: h.Stderr})
	if err != nil {
		return fmt.Errorf("run stage %s: %w", stage, err)
	}
	h.Log.WithFields(map[string]any{
		"sandbox": sandboxID, "stage": stage, "container": string(role),
		"exit_code": res.ExitCode, "duration": res.Duration.String(), "output_bytes": res.OutputBytes, "canceled": res.Canceled,
	}).Info("stage finished")
	if res.ExitCode != 0 {
		return &BuildFailure{ExitCode: res.ExitCode, Stage: stage}
	}
	if res.Canceled {
		// The script finished cleanly just as we were told to stop: still
		// report the stop, so the runner does not count the stage as done.
		return &BuildFailure{ExitCode: 1, Stage: stage}
	}
	return nil
}
