package executor

import (
	"context"
	"time"
)

// TeardownGrace is how long removing a sandbox goes on after the caller's
// context ended (a signal, a deadline): long enough to remove a sandbox's
// containers, volumes and network, short enough that a stopped cleanup or
// gc exits promptly.
const TeardownGrace = 15 * time.Second

// withGrace is a context that ends grace after ctx ends. Its values are
// ctx's.
func withGrace(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	out, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-timer.C:
			cancel()
		case <-out.Done():
		}
	})
	return out, func() {
		stop()
		cancel()
	}
}
