package main

import (
	"context"
	"fmt"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor"
)

// outputSection: row 3, a stage printing N bytes through the run hook to a
// pipe the bench drains, for several N, with the hook's peak RSS, against
// the same stage through the docker CLI (B3).
func outputSection(ctx context.Context, b *bench, rep *Report) error {
	if !b.opts.wants("output") {
		return nil
	}
	sizes := []int64{10 << 20, 100 << 20, 1 << 30}
	if b.opts.quick {
		sizes = sizes[:2]
	}
	rep.Baselines = append(rep.Baselines, Baseline{Key: "B3",
		Description: "the same script through `docker exec -i <build container> bash` by the docker CLI, stdout to a pipe the bench drains"})
	return b.withSandbox(ctx, "bench-output", func(s *session) error {
		build := s.sandbox.name(executor.RoleBuild)
		inspect, err := b.api.ContainerInspect(ctx, build, client.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspect build container: %w", err)
		}
		probe := newCPUProbe(inspect.Container.ID)
		for i, size := range sizes {
			if err := outputRows(ctx, b, rep, s, probe, size, i == len(sizes)-1); err != nil {
				return err
			}
		}
		return nil
	})
}

// outputSamples are the measurements of one output size.
type outputSamples struct {
	rate, rss, cpu  []float64
	cliRate, cliRSS []float64
	hookCPU, cliCPU map[string][]float64
}

// outputRows measures one size and adds its rows; the largest size gets
// the target and the CPU profile.
func outputRows(ctx context.Context, b *bench, rep *Report, s *session, probe *cpuProbe, size int64, largest bool) error {
	m, err := outputRuns(ctx, b, s, probe, size)
	if err != nil {
		return err
	}
	rateRow := Row{Section: "3", Key: "output_rate_" + sizeKey(size), Name: "output " + sizeName(size) + " through the run hook", Unit: "MB/s",
		Product: summarize(m.rate), Baseline: summarize(m.cliRate), BaselineKey: "B3", HigherIsBetter: true,
		Note: fmt.Sprintf("the hook used %.0f%% of one core (user+sys ÷ wall, median)", 100*medianOf(m.cpu))}
	rss := summarize(m.rss)
	rssRow := Row{Section: "3", Key: "output_rss_" + sizeKey(size), Name: "  run hook peak RSS, " + sizeName(size), Unit: "MB",
		Product: rss, Baseline: summarize(m.cliRSS), BaselineKey: "B3",
		Target: "< 50 MB", Met: boolPtr(rss != nil && rss.Max < 50)}
	if largest {
		r := summarize(m.rate)
		rateRow.Target, rateRow.Met = "≥ 300 MB/s", boolPtr(r != nil && r.Median >= 300)
		rssRow.Note = "met means every sample's peak stayed under 50 MB; compare the rows above: flat whatever the size"
		rep.Profiles = append(rep.Profiles, cpuProfile(size, m.hookCPU, m.cliCPU, medianOf(m.rate), medianOf(m.cliRate)))
	}
	rep.Rows = append(rep.Rows, rateRow, rssRow)
	return nil
}

// outputRuns streams size bytes through the hook -runs times, and through
// the CLI as many times (at most 3 for 1 GiB), each followed by the other.
func outputRuns(ctx context.Context, b *bench, s *session, probe *cpuProbe, size int64) (outputSamples, error) {
	m := outputSamples{hookCPU: map[string][]float64{}, cliCPU: map[string][]float64{}}
	script, err := s.attempt.WriteScript(fmt.Sprintf("head -c %d /dev/zero\n", size))
	if err != nil {
		return m, err
	}
	cliRuns := b.opts.runs
	if size >= 1<<30 {
		cliRuns = b.opts.heavyRuns()
	}
	build := s.sandbox.name(executor.RoleBuild)
	b.log.printf("output %s: %d run hooks and %d docker exec CLI runs", sizeName(size), b.opts.runs, cliRuns)
	for i := range b.opts.runs {
		before := probe.sample()
		h, err := s.hook(ctx, discardData, "run", script, "build_script")
		if err != nil {
			return m, err
		}
		mid := probe.sample()
		if h.OutBytes != size {
			return m, fmt.Errorf("run hook delivered %d bytes of %d", h.OutBytes, size)
		}
		m.rate = append(m.rate, megabytes(size)/h.Wall.Seconds())
		m.rss = append(m.rss, megabytes(h.MaxRSSKB*1024))
		m.cpu = append(m.cpu, (h.UserCPU+h.SysCPU).Seconds()/h.Wall.Seconds())
		addCPU(m.hookCPU, h, mid.since(before))
		if i >= cliRuns {
			continue
		}
		c, err := measure(dockerExec(ctx, s, build), discardData, script)
		if err != nil {
			return m, err
		}
		if c.OutBytes != size {
			return m, fmt.Errorf("docker exec delivered %d bytes of %d", c.OutBytes, size)
		}
		addCPU(m.cliCPU, c, probe.sample().since(mid))
		m.cliRate = append(m.cliRate, megabytes(size)/c.Wall.Seconds())
		m.cliRSS = append(m.cliRSS, megabytes(c.MaxRSSKB*1024))
	}
	return m, nil
}

func sizeName(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

func sizeKey(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%dgib", n>>30)
	}
	return fmt.Sprintf("%dmib", n>>20)
}
