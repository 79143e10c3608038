package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor"
)

// poolSection: prepare with the warm pool on ([pool] size = 1), row 1's
// last line. A daemon is already up, so prepare only takes it and creates
// the job's containers. Before each sample the pool is filled and the bench
// waits until the background refill the previous prepare started has
// ended, so every sample finds a ready daemon and no fill competes with it.
func poolSection(ctx context.Context, b *bench, rep *Report) error {
	if !b.opts.wants("pool") {
		return nil
	}
	// A pids limit of its own gives this invocation a pool of its own.
	pids := 10_000 + b.inv.tag%10_000
	cfgPath, err := b.product.writeConfig("config-pool.toml", fmt.Sprintf("\n[limits]\npids = %d\n\n[pool]\nsize = 1\n", pids))
	if err != nil {
		return err
	}
	pool := warmPool{api: b.api, binary: b.product.binary, config: cfgPath, pids: pids}
	defer pool.drain(context.WithoutCancel(ctx))

	project := b.inv.newProject("hooks")
	var prepareS []float64
	for i := range b.opts.runs {
		if err := pool.fill(ctx); err != nil {
			return err
		}
		s, err := b.newSession(ctx, cfgPath, project, "bench-pool")
		if err != nil {
			return err
		}
		b.log.printf("prepare with the warm pool %d/%d", i+1, b.opts.runs)
		pr, err := s.hook(ctx, keepLines, "prepare")
		if _, cerr := s.cleanup(ctx); err == nil {
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
	rep.Rows = append(rep.Rows, Row{
		Section: "1", Key: "prepare_pool", Name: "prepare hook → TLS daemon ready (warm pool)", Unit: "s",
		Product: prep, Target: "≤ 0.30 s median", Met: boolPtr(prep != nil && prep.Median <= 0.3),
	})
	return nil
}

// warmPool is the invocation's own pool, driven with `dind-executor pool`.
// Its key (which daemon settings made it) is read off its first daemon.
type warmPool struct {
	api    *client.Client
	binary string
	config string
	pids   int64
	key    string
}

// fill waits for any background fill to end, then fills the pool.
func (p *warmPool) fill(ctx context.Context) error {
	if err := p.waitIdle(ctx); err != nil {
		return err
	}
	if err := p.command(ctx, "fill"); err != nil {
		return err
	}
	if p.key != "" {
		return nil
	}
	var err error
	p.key, err = p.findKey(ctx)
	return err
}

// drain removes the pool's unclaimed daemons once no fill runs.
func (p *warmPool) drain(ctx context.Context) {
	_ = p.waitIdle(ctx)
	_ = p.command(ctx, "drain")
}

func (p *warmPool) command(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, p.binary, append([]string{"--config", p.config, "pool"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pool %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// findKey is the pool key of the pooled daemon made with this pool's pids
// limit.
func (p *warmPool) findKey(ctx context.Context) (string, error) {
	res, err := p.api.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.
		Add("label", executor.LabelPool+"=true").Add("label", executor.LabelRole+"="+string(executor.RoleDaemon))})
	if err != nil {
		return "", fmt.Errorf("list pooled daemons: %w", err)
	}
	for _, c := range res.Items {
		inspect, err := p.api.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			continue // claimed or drained meanwhile
		}
		if limit := inspect.Container.HostConfig.PidsLimit; limit != nil && *limit == p.pids {
			return c.Labels[executor.LabelPoolKey], nil
		}
	}
	return "", fmt.Errorf("no pooled daemon has the pids limit %d after pool fill", p.pids)
}

// waitIdle waits until no fill of the pool runs.
func (p *warmPool) waitIdle(ctx context.Context) error {
	if p.key == "" {
		return nil // no fill of this pool has started yet
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		locks, err := p.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.
			Add("label", executor.LabelPoolKey+"="+p.key).Add("label", executor.LabelRole+"=pool-fill-lock")})
		if err != nil {
			return fmt.Errorf("list pool fill locks: %w", err)
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
