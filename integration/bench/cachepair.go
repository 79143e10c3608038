package main

import (
	"context"
	"fmt"

	"gitlab.com/dind-executor/dind-executor/integration/runner"
)

// The layer cache rows run the same build in a project's first job (a
// fresh sandbox, an empty data root) and in its next job, which, with
// [cache] layers = "project", starts on the data root the first job left.

// cacheConfig is the config for the layer cache rows: the base config with
// the layer cache on, or the base config when this build of dind-executor
// refuses the setting (then the next job starts empty too).
func cacheConfig(ctx context.Context, b *bench) (path string, withCache bool, err error) {
	path, err = b.product.layerCacheConfig(ctx)
	if err != nil || path != "" {
		return path, path != "", err
	}
	return b.product.configPath, false, nil
}

// jobPair is one project's first job and its next one.
type jobPair struct {
	first, next *runner.Result
}

// runJobPair runs first, then next; both are jobs of the same project.
func runJobPair(ctx context.Context, e *runner.Emulator, first, next runner.Job) (jobPair, error) {
	a, _, err := runJob(ctx, e, first)
	if err != nil {
		return jobPair{}, fmt.Errorf("%s, first job: %w", first.ProjectPath, err)
	}
	n, _, err := runJob(ctx, e, next)
	if err != nil {
		return jobPair{}, fmt.Errorf("%s, next job: %w", next.ProjectPath, err)
	}
	return jobPair{first: a, next: n}, nil
}

// hookSeconds is how long the first exec of kind took in res.
func hookSeconds(res *runner.Result, kind runner.ExecKind) (float64, bool) {
	x := res.ExecsOf(kind)
	if len(x) == 0 {
		return 0, false
	}
	return seconds(x[0].Duration), true
}

// speedup is how many times faster s is than cold (medians).
func speedup(cold, s *Stat) float64 {
	if cold == nil || s == nil || s.Median == 0 {
		return nan()
	}
	return cold.Median / s.Median
}
