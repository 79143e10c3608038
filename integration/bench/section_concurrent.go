package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"gitlab.com/dind-executor/dind-executor/integration/runner"
)

// concurrentSection: row 7, N light jobs at once through N emulators, with
// every hook's peak RSS (as the emulator records it) and the host's memory.
func concurrentSection(ctx context.Context, b *bench, rep *Report) error {
	if !b.opts.wants("concurrent") {
		return nil
	}
	n := b.opts.concurrency
	var walls, sumRSS, maxRSS, hostDelta, perJob []float64
	runs := b.opts.heavyRuns()
	for r := range runs {
		b.log.printf("%d concurrent light jobs, run %d/%d", n, r+1, runs)
		res, err := concurrentJobs(ctx, b, n)
		if err != nil {
			return err
		}
		walls = append(walls, seconds(res.wall))
		sumRSS, maxRSS = append(sumRSS, res.sumRSS), append(maxRSS, res.maxRSS)
		hostDelta = append(hostDelta, megabytes(res.hostDeltaKB*1024))
		perJob = append(perJob, res.jobWalls...)
	}
	w := summarize(walls)
	note := ""
	if light := rep.row(lightJobKey); light != nil && light.Product != nil && w != nil {
		one := light.Product.Median
		note = fmt.Sprintf("= %.2f× one light job alone (row 5); %d jobs one after another would take %.1f s", w.Median/one, n, float64(n)*one)
	}
	name := fmt.Sprintf("%d concurrent light jobs", n)
	rep.Rows = append(rep.Rows,
		Row{Section: "7", Key: "concurrent_wall", Name: name + ": wall time, all done", Unit: "s", Product: w, Note: note},
		Row{Section: "7", Key: "concurrent_job", Name: "  one job's time under that load", Unit: "s", Product: summarize(perJob)},
		Row{Section: "7", Key: "concurrent_hook_rss_sum", Name: "  Σ per job of its largest hook peak RSS", Unit: "MB", Product: summarize(sumRSS),
			Note: "each job runs one hook at a time, so this bounds the executor's resident memory at any moment (ru_maxrss of every hook, as the runner emulator records it)"},
		Row{Section: "7", Key: "concurrent_hook_rss_max", Name: "  largest single hook peak RSS", Unit: "MB", Product: summarize(maxRSS)},
		Row{Section: "7", Key: "concurrent_host_mem", Name: "  host used memory, peak increase", Unit: "MB", Product: summarize(hostDelta),
			Note: "MemTotal − MemAvailable from /proc/meminfo every 100 ms, peak minus before; includes the inner dockerd/containerd of every sandbox and the job containers, and whatever else runs on this host"},
	)
	return nil
}

// concurrentRun is one round of N jobs at once.
type concurrentRun struct {
	wall           time.Duration
	jobWalls       []float64 // seconds
	sumRSS, maxRSS float64   // MB
	hostDeltaKB    int64
}

// concurrentJobs starts n light jobs at once, in one project, and waits
// for all of them.
func concurrentJobs(ctx context.Context, b *bench, n int) (concurrentRun, error) {
	project := b.inv.newProject("light")
	results := make([]*runner.Result, n)
	errs := make([]error, n)
	run := concurrentRun{jobWalls: make([]float64, n)}
	mem := startMemSampler(100 * time.Millisecond)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		job, e := b.lightJob(project), b.product.emulator(b.product.configPath)
		wg.Go(func() {
			var wall time.Duration
			results[i], wall, errs[i] = runJob(ctx, e, job)
			run.jobWalls[i] = seconds(wall)
		})
	}
	wg.Wait()
	run.wall = time.Since(start)
	run.hostDeltaKB = mem.finish()
	for i, res := range results {
		if errs[i] != nil {
			return run, errs[i]
		}
		peak := megabytes(largestHookRSSKB(res) * 1024)
		run.sumRSS += peak
		run.maxRSS = max(run.maxRSS, peak)
	}
	return run, nil
}

// largestHookRSSKB is the largest peak RSS of any hook of a job, in KiB.
func largestHookRSSKB(res *runner.Result) int64 {
	var peak int64
	for _, x := range res.Execs {
		peak = max(peak, x.MaxRSSKB)
	}
	return peak
}
