package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/config"
	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/stages"
)

// poolSection times prepare with the warm pool on ([pool] size = 1): a
// daemon is already up, so prepare only takes it and creates the job's
// containers. Before each sample the pool is filled and the bench waits
// until the background refill the previous prepare started has ended, so
// every sample finds a ready daemon and no fill competes with it.
func (b *bencher) poolSection(ctx context.Context) error {
	if !b.sections["pool"] {
		return nil
	}
	// A pids limit of its own gives this invocation a pool of its own.
	toml := b.config + fmt.Sprintf("\n[limits]\npids = %d\n\n[pool]\nsize = 1\n", 10_000+b.runTag%10_000)
	cfg, err := config.Parse([]byte(toml))
	if err != nil {
		return err
	}
	key := stages.PoolSpec(cfg).Key()
	cfgPath := filepath.Join(b.work, "config-pool.toml")
	if err := os.WriteFile(cfgPath, []byte(toml), 0o600); err != nil {
		return err
	}
	poolCmd := func(args ...string) error {
		out, err := exec.CommandContext(ctx, b.binary, append([]string{"--config", cfgPath, "pool"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("pool %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	defer func() {
		_ = b.waitPoolIdle(context.WithoutCancel(ctx), key)
		_ = poolCmd("drain")
	}()

	var prepareS []float64
	for i := range b.opts.runs {
		if err := b.waitPoolIdle(ctx, key); err != nil {
			return err
		}
		if err := poolCmd("fill"); err != nil {
			return err
		}
		s, err := newSession(b, b.newJobID(), "bench-pool")
		if err != nil {
			return err
		}
		s.config = cfgPath
		b.progress("prepare with the warm pool %d/%d", i+1, b.opts.runs)
		pr, err := s.hook(ctx, keepLines, "prepare")
		if _, cerr := s.hook(context.WithoutCancel(ctx), keepLines, "cleanup"); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("prepare with the pool: %w", err)
		}
		if _, warm := pr.lineAt("Took a warm daemon from the pool"); !warm {
			return fmt.Errorf("prepare %d did not take a pooled daemon", i+1)
		}
		prepareS = append(prepareS, seconds(pr.Wall))
	}
	prep := summarize(prepareS)
	b.report.Rows = append(b.report.Rows, Row{
		Section: "1", Key: "prepare_pool", Name: "prepare hook → TLS daemon ready (warm pool)", Unit: "s",
		Product: prep, Target: "≤ 0.30 s median", Met: boolPtr(prep != nil && prep.Median <= 0.3),
	})
	return nil
}

// waitPoolIdle waits until no fill of the pool runs.
func (b *bencher) waitPoolIdle(ctx context.Context, key string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		locks, err := b.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.
			Add("label", executor.LabelPoolKey+"="+key).Add("label", executor.LabelRole+"=pool-fill-lock")})
		if err != nil {
			return err
		}
		if len(locks.Items) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the pool's background fill did not end within 2 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
