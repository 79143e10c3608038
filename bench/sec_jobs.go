package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// emulator plays GitLab Runner against the binary. With record set, every
// hook goes through the bench's rusage wrapper, which appends its peak RSS
// to that file.
func (b *bencher) emulator(configPath, record string) *runner.Emulator {
	e := &runner.Emulator{
		Binary:          b.binary,
		Args:            []string{"--config", configPath},
		PrepareAttempts: 1, // a failed prepare is a failed measurement, not a retry
		TempRoot:        b.work,
	}
	if record != "" {
		e.Binary = b.self
		e.Args = append([]string{wrapCommand, record, b.binary}, e.Args...)
	}
	return e
}

// benchJob is the seed job in one of this invocation's projects, so its
// sandbox's labels say where it comes from. projectID tells projects apart
// for the executor's per-project caches.
func (b *bencher) benchJob(project string, projectID int64, script ...string) runner.Job {
	job := seedjob.Job(b.newJobID(), b.repoSHA)
	job.ProjectID = projectID
	job.PipelineID = b.runTag
	job.ProjectPath = b.projectPath(project)
	job.Script = script
	job.AfterScript = nil
	return job
}

// lightJob is "a whole light job": the runner's stages around `docker info`
// against the sandbox's daemon, with the seed's docker:dind service entry.
func (b *bencher) lightJob() runner.Job { return b.benchJob("light", b.runTag, "docker info") }

// runJob runs job through e and fails unless it succeeded.
func (b *bencher) runJob(ctx context.Context, e *runner.Emulator, job runner.Job) (*runner.Result, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := e.Run(ctx, job)
	wall := time.Since(start)
	if err != nil {
		return nil, wall, err
	}
	if res.Outcome.Kind != runner.OutcomeSuccess {
		log := runner.PlainText(res.Log)
		if len(log) > 4000 {
			log = log[len(log)-4000:]
		}
		return res, wall, fmt.Errorf("job %d: %s\n%s", job.ID, res.Outcome, log)
	}
	return res, wall, nil
}

// lightJobSection: section 5, whole light jobs through the emulator.
func (b *bencher) lightJobSection(ctx context.Context) error {
	if !b.sections["job"] {
		return nil
	}
	e := b.emulator(b.configPath, "")
	var walls []float64
	var profile *milestones
	for i := range b.opts.runs {
		b.progress("light job %d/%d through the runner emulator", i+1, b.opts.runs)
		res, wall, err := b.runJob(ctx, e, b.lightJob())
		if err != nil {
			return err
		}
		walls = append(walls, seconds(wall))
		names, marks := execMarks(res)
		if profile == nil {
			profile = newMilestones(append([]string{"emulator started"}, append(names, "emulator returned")...)...)
		}
		start := res.Execs[0].Started
		marks["emulator started"] = start
		marks["emulator returned"] = start.Add(wall)
		profile.add(start, marks)
	}
	b.lightJobs = walls
	w := summarize(walls)
	ref := dockerExecutorReference
	b.report.Rows = append(b.report.Rows, Row{
		Section: "5", Key: "light_job", Name: "whole light job (config → prepare → stages with `docker info` → cleanup)", Unit: "s",
		Product: w, Reference: &ref, ReferenceName: "R5, quoted, not measured here",
		Target: fmt.Sprintf("≤ %.2f s (half of %.1f s)", ref/2, ref), Met: boolPtr(w != nil && w.Median <= ref/2),
	})
	b.report.Baselines = append(b.report.Baselines, Baseline{Key: "R5",
		Description: fmt.Sprintf("NOT MEASURED HERE: %.1f s median, the issue's figure for the same light job on the docker executor + docker:dind TLS service on this machine kind (no gitlab-runner binary on this machine to run it)", ref)})
	p := profile.profile("whole light job through the runner emulator (each hook's end; step = the hook plus the emulator's gap before it)",
		"target: whole light job ≤ half of 5.2 s", "")
	p.Reading = readingJob(p)
	b.report.Profiles = append(b.report.Profiles, p)
	return nil
}

// execMarks names each driver call of a job and says when it ended.
func execMarks(res *runner.Result) ([]string, map[string]time.Time) {
	var names []string
	marks := map[string]time.Time{}
	for _, x := range res.Execs {
		name := string(x.Kind) + " hook exited"
		if x.Kind == runner.ExecRun {
			name = "run " + x.Stage + " exited"
		}
		if _, dup := marks[name]; dup {
			name += " (again)"
		}
		names = append(names, name)
		marks[name] = x.Started.Add(x.Duration)
	}
	return names, marks
}

func readingJob(p Profile) string {
	var parts []string
	var stages float64
	for _, s := range p.Steps {
		switch {
		case strings.HasPrefix(s.Name, "run "):
			stages += s.Delta
		case s.Name == "prepare hook exited", s.Name == "cleanup hook exited", s.Name == "config hook exited":
			parts = append(parts, fmt.Sprintf("%s %.0f ms", strings.TrimSuffix(s.Name, " hook exited"), s.Delta))
		}
	}
	parts = append(parts, fmt.Sprintf("all run stages together %.0f ms", stages))
	return "Of " + fmt.Sprintf("%.0f ms: ", p.Total) + strings.Join(parts, ", ") + "."
}

// buildLine times one docker build of the seed image inside the job and
// prints "BENCH-BUILD <kind> <µs>".
func buildLine(kind string) string {
	return `t0=$(date +%s%N); docker build -t my-app:bench . >/dev/null; echo "BENCH-BUILD ` + kind + ` $(( ($(date +%s%N) - t0) / 1000 ))"`
}

var buildResult = regexp.MustCompile(`(?m)^BENCH-BUILD (\w+) (\d+)\s*$`)

// builds reads the build timings a job printed, in seconds.
func builds(res *runner.Result) map[string]float64 {
	out := map[string]float64{}
	x := res.Exec(runner.StageStepScript)
	if x == nil {
		return out
	}
	for _, m := range buildResult.FindAllStringSubmatch(runner.PlainText(x.Output), -1) {
		us, _ := strconv.ParseFloat(m[2], 64)
		out[m[1]] = us / 1e6
	}
	return out
}

// layerCacheConfig writes the bench config with the per-project layer
// cache on and returns its path, or "" when this build of dind-executor
// refuses the setting (the config hook validates the whole file).
func (b *bencher) layerCacheConfig(ctx context.Context) string {
	path := filepath.Join(b.work, "config-layer-cache.toml")
	if err := os.WriteFile(path, []byte(b.config+"\n[cache]\nlayers = \"project\"\n"), 0o600); err != nil {
		return ""
	}
	cmd := exec.CommandContext(ctx, b.binary, "--config", path, "config")
	cmd.Dir = b.work
	if err := cmd.Run(); err != nil {
		return ""
	}
	return path
}

// seedSection: section 6, the seed's multi-stage image built cold, rebuilt
// in the same sandbox, and built again by the next job of the project,
// with the per-project layer cache on when the binary has it. Each run
// uses a project of its own, so its first job starts cold.
func (b *bencher) seedSection(ctx context.Context) error {
	if !b.sections["seed"] {
		return nil
	}
	cachePath := b.layerCacheConfig(ctx)
	withCache := cachePath != ""
	configPath := b.configPath
	if withCache {
		configPath = cachePath
	}
	e := b.emulator(configPath, "")
	var cold, rebuild, next, cleanupA, prepareB []float64
	for i := range b.opts.runs {
		b.progress("seed build %d/%d: job A (cold build, then rebuild), job B of the same project (layer cache on: %v)", i+1, b.opts.runs, withCache)
		project, projectID := fmt.Sprintf("seed-%d", i), b.runTag*100+int64(i)
		resA, _, err := b.runJob(ctx, e, b.benchJob(project, projectID, "cp /bin/busybox .", buildLine("cold"), buildLine("rebuild")))
		if err != nil {
			return err
		}
		resB, _, err := b.runJob(ctx, e, b.benchJob(project, projectID, "cp /bin/busybox .", buildLine("nextjob")))
		if err != nil {
			return err
		}
		a, bb := builds(resA), builds(resB)
		if _, ok := a["cold"]; !ok {
			return fmt.Errorf("job A printed no build timings:\n%s", runner.PlainText(resA.Log))
		}
		cold, rebuild, next = append(cold, a["cold"]), append(rebuild, a["rebuild"]), append(next, bb["nextjob"])
		if x := resA.ExecsOf(runner.ExecCleanup); len(x) > 0 {
			cleanupA = append(cleanupA, seconds(x[0].Duration))
		}
		if x := resB.ExecsOf(runner.ExecPrepare); len(x) > 0 {
			prepareB = append(prepareB, seconds(x[0].Duration))
		}
	}
	c, r, n := summarize(cold), summarize(rebuild), summarize(next)
	speedup := func(s *Stat) float64 { return c.Median / s.Median }
	nextName, nextNote := "  build in the next job, layer cache on", fmt.Sprintf(
		"speed-up over cold %.1f×, with [cache] layers = \"project\": job B's daemon opens the data root job A's left", speedup(n))
	if !withCache {
		nextName, nextNote = "  build in the next job (no layer cache in this build)", fmt.Sprintf(
			"speed-up over cold %.2f×: this build of dind-executor refuses [cache] layers = \"project\", so every job starts with an empty data root", speedup(n))
	}
	b.report.Baselines = append(b.report.Baselines, Baseline{Key: "B6",
		Description: "the cold build of the same image in a fresh sandbox (first row of 6); ratio = build ÷ cold build"})
	b.report.Rows = append(b.report.Rows,
		Row{Section: "6", Key: "seed_cold", Name: "seed multi-stage image: cold docker build (fresh sandbox)", Unit: "s", Product: c,
			Note: "also what the next job of a project gets without the layer cache (an empty data root)"},
		Row{Section: "6", Key: "seed_rebuild_same_sandbox", Name: "  rebuild, same sandbox (inner daemon's own cache)", Unit: "s",
			Product: r, Baseline: c, BaselineKey: "B6",
			Note: fmt.Sprintf("speed-up over cold %.1f×: what a cache hit costs, the floor for the per-project cache", speedup(r))},
		Row{Section: "6", Key: "seed_next_job", Name: nextName, Unit: "s",
			Product: n, Baseline: c, BaselineKey: "B6",
			Target: "≥ 10× faster than cold", Met: boolPtr(speedup(n) >= 10), Note: nextNote},
	)
	parts := []Part{
		{Name: "cold build, fresh sandbox", Values: []float64{c.Median * 1000}, N: c.N},
		{Name: "rebuild in the same sandbox (cache hit)", Values: []float64{r.Median * 1000}, N: r.N},
		{Name: "build in the next job, same project", Values: []float64{n.Median * 1000}, N: n.N},
	}
	reading := "Without the layer cache each job's inner daemon starts from an empty data-root volume that cleanup removes, so nothing of job A's layers reaches job B. " +
		"A cache hit costs what the same-sandbox rebuild costs: the floor for the per-project cache."
	if withCache {
		b.report.Rows = append(b.report.Rows,
			Row{Section: "6", Key: "seed_cleanup_with_cache", Name: "  cleanup hook of job A, layer cache on", Unit: "s", Product: summarize(cleanupA),
				Note: "prunes the data root to its cap and stops the daemon cleanly before removing the sandbox; compare row 4"},
			Row{Section: "6", Key: "seed_prepare_with_cache", Name: "  prepare hook of job B, on the project's data root", Unit: "s", Product: summarize(prepareB),
				Note: "compare row 1 (an empty data root)"},
		)
		parts = append(parts,
			Part{Name: "cleanup hook of job A (prune, clean daemon stop, removal)", Values: []float64{medianOf(cleanupA) * 1000}, N: len(cleanupA)},
			Part{Name: "prepare hook of job B (daemon on the kept data root)", Values: []float64{medianOf(prepareB) * 1000}, N: len(prepareB)})
		reading = fmt.Sprintf("With [cache] layers = \"project\", job B's daemon opens the data root job A's daemon left, so its build finds every layer: %.0f ms against %.0f ms cold (%.1f×), "+
			"close to the same-sandbox rebuild (%.0f ms), the floor. The cold build itself is short (%.0f ms), so 10× sits near that floor.",
			n.Median*1000, c.Median*1000, speedup(n), r.Median*1000, c.Median*1000)
	}
	b.report.Profiles = append(b.report.Profiles, Profile{
		Title: "seed image builds (timed inside the job around `docker build`) and what the cache costs around them", Why: "target: cached rebuild ≥ 10× faster than cold", Unit: "ms",
		Columns: []string{"median"}, Parts: parts, Reading: reading,
	})
	return nil
}

// concurrentSection: section 7, N light jobs at once through the emulator
// (each hook wrapped to record its peak RSS), with the host's memory.
func (b *bencher) concurrentSection(ctx context.Context) error {
	if !b.sections["concurrent"] {
		return nil
	}
	n := b.opts.concurrency
	var walls, sumRSS, maxRSS, hostDelta, perJob []float64
	runs := b.heavyRuns()
	for r := range runs {
		b.progress("%d concurrent light jobs, run %d/%d", n, r+1, runs)
		records := make([]string, n)
		errs := make([]error, n)
		jobWalls := make([]float64, n)
		mem := startMemSampler(100 * time.Millisecond)
		start := time.Now()
		var wg sync.WaitGroup
		for i := range n {
			records[i] = filepath.Join(b.work, fmt.Sprintf("rss-%d-%d", r, i))
			job := b.lightJob()
			wg.Go(func() {
				_, wall, err := b.runJob(ctx, b.emulator(b.configPath, records[i]), job)
				jobWalls[i], errs[i] = seconds(wall), err
			})
		}
		wg.Wait()
		wall := time.Since(start)
		delta := mem.finish()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		var sum, largest float64
		for _, rec := range records {
			peak, err := peakRSS(rec)
			if err != nil {
				return err
			}
			sum += peak
			largest = max(largest, peak)
		}
		walls = append(walls, seconds(wall))
		sumRSS, maxRSS = append(sumRSS, sum), append(maxRSS, largest)
		hostDelta = append(hostDelta, megabytes(delta*1024))
		perJob = append(perJob, jobWalls...)
	}
	overhead := b.wrapperOverhead(ctx)
	w := summarize(walls)
	note := ""
	if len(b.lightJobs) > 0 && w != nil {
		note = fmt.Sprintf("= %.2f× one light job alone (row 5); %d jobs one after another would take %.1f s", w.Median/medianOf(b.lightJobs), n, float64(n)*medianOf(b.lightJobs))
	}
	name := fmt.Sprintf("%d concurrent light jobs", n)
	b.report.Rows = append(b.report.Rows,
		Row{Section: "7", Key: "concurrent_wall", Name: name + ": wall time, all done", Unit: "s", Product: w, Note: note},
		Row{Section: "7", Key: "concurrent_job", Name: "  one job's time under that load", Unit: "s", Product: summarize(perJob)},
		Row{Section: "7", Key: "concurrent_hook_rss_sum", Name: "  Σ per job of its largest hook peak RSS", Unit: "MB", Product: summarize(sumRSS),
			Note: "each job runs one hook at a time, so this bounds the executor's resident memory at any moment (rusage of every hook, via a wrapper process: " + overhead + ")"},
		Row{Section: "7", Key: "concurrent_hook_rss_max", Name: "  largest single hook peak RSS", Unit: "MB", Product: summarize(maxRSS)},
		Row{Section: "7", Key: "concurrent_host_mem", Name: "  host used memory, peak increase", Unit: "MB", Product: summarize(hostDelta),
			Note: "MemTotal − MemAvailable from /proc/meminfo every 100 ms, peak minus before; includes the inner dockerd/containerd of every sandbox and the job containers, and whatever else runs on this host"},
	)
	return nil
}

// peakRSS is the largest hook peak RSS in a wrapper record file, in MB.
func peakRSS(path string) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("rusage record: %w", err)
	}
	defer f.Close()
	var peak float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err == nil {
			peak = max(peak, megabytes(kb*1024))
		}
	}
	return peak, sc.Err()
}

// wrapperOverhead measures what the rusage wrapper adds to one exec.
func (b *bencher) wrapperOverhead(ctx context.Context) string {
	truePath := "/bin/true"
	record := filepath.Join(b.work, "rss-overhead")
	var plain, wrapped []float64
	for range 10 {
		p, err1 := runMeasured(ctx, b.work, os.Environ(), keepLines, "", truePath)
		w, err2 := runMeasured(ctx, b.work, os.Environ(), keepLines, "", b.self, wrapCommand, record, truePath)
		if err1 != nil || err2 != nil {
			return "overhead not measured"
		}
		plain, wrapped = append(plain, millis(p.Wall)), append(wrapped, millis(w.Wall))
	}
	return fmt.Sprintf("it adds %.1f ms per hook", medianOf(wrapped)-medianOf(plain))
}
