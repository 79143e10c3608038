package executor

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// placementLock serializes placement among the prepare hooks of this
// runner host, from reading the Engines' loads to the chosen Engine
// holding the new sandbox's first volume: jobs the runner starts together
// then each see the ones before them. The lock is a file in /tmp named
// after the Engines (it holds nothing; not TMPDIR, which the runner sets
// to each job's own dir); the kernel drops it when the hook exits, killed
// or not. Runners on other hosts placing on the same Engines are not
// serialized with these, only spread by the tie-break.
const placementLockDir = "/tmp"

func placementLock(ctx context.Context, engines []string) (unlock func(), err error) {
	h := fnv.New64a()
	h.Write([]byte(strings.Join(engines, "\x00")))
	path := filepath.Join(placementLockDir, fmt.Sprintf("dind-executor-placement-%x.lock", h.Sum64()))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("open placement lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("take placement lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for placement lock %s: %w", path, context.Cause(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
}
