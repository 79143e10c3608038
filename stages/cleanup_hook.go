package stages

import (
	"context"
	"fmt"
	"time"

	"gitlab.com/dind-executor/dind-executor/executor"
)

// cleanupTimeout bounds teardown whatever the job left behind: the runner
// gives cleanup up to an hour, and gc removes what is left later.
const cleanupTimeout = 5 * time.Minute

// CleanupHook removes everything the sandbox created, found by label. It is
// idempotent: after a failed prepare, or a second time, it succeeds. On
// SIGTERM/SIGINT it stops asking the daemon what it produced and removes
// what it can within the executor's teardown grace.
func (h *Hooks) CleanupHook(ctx context.Context) error {
	sandboxID, err := h.sandboxID()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	engine, err := h.Connect()
	if err != nil {
		return err
	}
	defer engine.Close()
	removed, err := engine.Teardown(ctx, sandboxID, executor.TeardownOptions{By: "cleanup"})
	fmt.Fprintf(h.Stdout, "dind-executor sandbox %s: removed %s\n", sandboxID, removed)
	for _, name := range append(append(removed.Containers, removed.Volumes...), removed.Networks...) {
		fmt.Fprintf(h.Stdout, "  removed %s\n", name)
	}
	if removed.LayerCache != "" {
		fmt.Fprintf(h.Stdout, "  %s\n", removed.LayerCache)
	}
	if err != nil {
		return fmt.Errorf("cleanup sandbox %s: %w", sandboxID, err)
	}
	return nil
}
