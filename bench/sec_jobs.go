package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
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
func (b *bencher) emulator(record string) *runner.Emulator {
	e := &runner.Emulator{
		Binary:          b.binary,
		Args:            []string{"--config", b.configPath},
		PrepareAttempts: 1, // a failed prepare is a failed measurement, not a retry
		TempRoot:        b.work,
	}
	if record != "" {
		e.Binary = b.self
		e.Args = append([]string{wrapCommand, record, b.binary}, e.Args...)
	}
	return e
}

// benchJob is the seed job with the bench's project and this invocation's
// pipeline id, so its sandbox's labels say where it comes from.
func (b *bencher) benchJob(project string, script ...string) runner.Job {
	job := seedjob.Job(b.newJobID(), b.repoSHA)
	job.ProjectID = b.runTag
	job.PipelineID = b.runTag
	job.ProjectPath = benchProjectPath + "/" + project
	job.Script = script
	job.AfterScript = nil
	return job
}

// lightJob is "a whole light job": the runner's stages around `docker info`
// against the sandbox's daemon, with the seed's docker:dind service entry.
func (b *bencher) lightJob() runner.Job { return b.benchJob("light", "docker info") }

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
	e := b.emulator("")
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

// seedSection: section 6, the seed's multi-stage image built cold, rebuilt
// in the same sandbox, and built again by the next job of the project.
func (b *bencher) seedSection(ctx context.Context) error {
	if !b.sections["seed"] {
		return nil
	}
	e := b.emulator("")
	var cold, rebuild, next []float64
	for i := range b.opts.runs {
		b.progress("seed build %d/%d: job A (cold build, then rebuild), job B of the same project", i+1, b.opts.runs)
		resA, _, err := b.runJob(ctx, e, b.benchJob("seed", "cp /bin/busybox .", buildLine("cold"), buildLine("rebuild")))
		if err != nil {
			return err
		}
		resB, _, err := b.runJob(ctx, e, b.benchJob("seed", "cp /bin/busybox .", buildLine("nextjob")))
		if err != nil {
			return err
		}
		a, bb := builds(resA), builds(resB)
		if _, ok := a["cold"]; !ok {
			return fmt.Errorf("job A printed no build timings:\n%s", runner.PlainText(resA.Log))
		}
		cold, rebuild, next = append(cold, a["cold"]), append(rebuild, a["rebuild"]), append(next, bb["nextjob"])
	}
	c, r, n := summarize(cold), summarize(rebuild), summarize(next)
	speedup := func(s *Stat) float64 { return c.Median / s.Median }
	b.report.Baselines = append(b.report.Baselines, Baseline{Key: "B6",
		Description: "the cold build of the same image in a fresh sandbox (first row of 6); ratio = build ÷ cold build"})
	b.report.Rows = append(b.report.Rows,
		Row{Section: "6", Key: "seed_cold", Name: "seed multi-stage image: cold docker build (fresh sandbox)", Unit: "s", Product: c},
		Row{Section: "6", Key: "seed_rebuild_same_sandbox", Name: "  rebuild, same sandbox (inner daemon's own cache)", Unit: "s",
			Product: r, Baseline: c, BaselineKey: "B6",
			Note: fmt.Sprintf("speed-up over cold %.1f×: what a layer-cache hit costs, the floor for the per-project cache", speedup(r))},
		Row{Section: "6", Key: "seed_next_job", Name: "  build in the next job of the same project", Unit: "s",
			Product: n, Baseline: c, BaselineKey: "B6",
			Target: "≥ 10× faster than cold", Met: boolPtr(speedup(n) >= 10),
			Note: fmt.Sprintf("speed-up over cold %.2f×. The per-project layer cache is not implemented yet: today every job starts with an empty data root, so this equals a cold build", speedup(n))},
	)
	b.report.Profiles = append(b.report.Profiles, Profile{
		Title: "seed image builds (timed inside the job around `docker build`)", Why: "target: cached rebuild ≥ 10× faster than cold", Unit: "ms",
		Columns: []string{"median"},
		Parts: []Part{
			{Name: "cold build, fresh sandbox", Values: []float64{c.Median * 1000}, N: c.N},
			{Name: "rebuild in the same sandbox (cache hit)", Values: []float64{r.Median * 1000}, N: r.N},
			{Name: "build in the next job, same project", Values: []float64{n.Median * 1000}, N: n.N},
		},
		Reading: "Each job's inner daemon gets a fresh data-root volume that cleanup removes, so nothing of job A's layers reaches job B. " +
			"A cache hit costs what the same-sandbox rebuild costs; that is what the per-project layer cache has to deliver across jobs.",
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
				_, wall, err := b.runJob(ctx, b.emulator(records[i]), job)
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
