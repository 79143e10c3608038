package runner

import (
	"fmt"
	"syscall"
	"time"
)

// KillError means the driver survived SIGKILL for ForceKillTimeout; the
// runner abandons it (helpers/process KillProcessError).
type KillError struct{ PID int }

func (e *KillError) Error() string {
	return fmt.Sprintf("failed to kill process PID=%d, likely process is dormant", e.PID)
}

type killResult struct {
	err        error
	ending     Ending
	termToExit time.Duration
}

// killAndWait is the runner's osKillWait.KillAndWait on Unix: SIGTERM to the
// process group (SIGKILL at once if that fails), wait graceful, SIGKILL to
// the group, wait force, give up.
func killAndWait(pid int, waitCh <-chan error, graceful, force time.Duration) killResult {
	start := time.Now()
	ending := EndedTerminated
	if err := syscall.Kill(-pid, syscall.SIGTERM); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		ending = EndedKilled
	}
	select {
	case err := <-waitCh:
		return killResult{err: err, ending: ending, termToExit: time.Since(start)}
	case <-time.After(graceful):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case err := <-waitCh:
		return killResult{err: err, ending: EndedKilled, termToExit: time.Since(start)}
	case <-time.After(force):
		return killResult{err: &KillError{PID: pid}, ending: EndedAbandoned, termToExit: time.Since(start)}
	}
}
