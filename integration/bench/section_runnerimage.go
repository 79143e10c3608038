package main

import (
	"context"
	"fmt"

	"gitlab.com/dind-executor/dind-executor/integration/runner"
)

// The runner image rows measure a realistic build with the layer cache:
// the repository's own Dockerfile (a Go builder stage compiling
// ./cmd/dind-executor from vendored modules, a final stage FROM a runner
// image), built by a job in a sandbox. The sandbox's daemon reaches no
// registry, so the job loads its base images from an archive the bench
// saved, only when they are missing, as a FROM pull happens only then.

// maxRunnerImageRuns bounds the samples: a cold build compiles the
// executor for one to four minutes on a 2-core host.
const maxRunnerImageRuns = 2

// runnerImageSection: rows 6b, the runner image built cold in a fresh
// sandbox, and by the next job of the same project with the layer cache.
func runnerImageSection(ctx context.Context, b *bench, rep *Report) error {
	if !b.opts.wants("runnerimage") {
		return nil
	}
	configPath, withCache, err := cacheConfig(ctx, b)
	if err != nil {
		return err
	}
	b.log.printf("runner image: Go toolchain image, saved base images, repository with vendored modules")
	job, removeGoImage, err := prepareRunnerImageJob(ctx, b)
	defer removeGoImage()
	if err != nil {
		return err
	}
	e := b.product.emulator(configPath)
	var m runnerImageSamples
	runs := min(b.opts.runs, maxRunnerImageRuns)
	for i := range runs {
		b.log.printf("runner image %d/%d: job A (fresh sandbox: load the base images, build), job B of the same project (layer cache on: %v)", i+1, runs, withCache)
		project := b.inv.newProject("runner-image")
		pair, err := runJobPair(ctx, e, job.of(b, project), job.of(b, project))
		if err != nil {
			return err
		}
		if err := m.add(pair); err != nil {
			return err
		}
	}
	runnerImageRows(rep, withCache, m)
	return nil
}

// runnerImageSamples are the timings of each pair of jobs, in seconds.
type runnerImageSamples struct {
	coldLoad, coldBuild, cold []float64
	nextBuild, next           []float64
	nextLoads                 int // next jobs that had to load the base images again
}

func (m *runnerImageSamples) add(p jobPair) error {
	a, n := jobTimes(p.first), jobTimes(p.next)
	if _, ok := a["build"]; !ok {
		return fmt.Errorf("runner image job A printed no build timing:\n%s", lastLines(runner.PlainText(p.first.Log), 40))
	}
	if got := baseImages(p.first); got != "loaded" {
		return fmt.Errorf("runner image job A found its base images %q in a fresh sandbox", got)
	}
	m.coldLoad, m.coldBuild = append(m.coldLoad, a["load"]), append(m.coldBuild, a["build"])
	m.cold = append(m.cold, a["load"]+a["build"])
	m.nextBuild, m.next = append(m.nextBuild, n["build"]), append(m.next, n["load"]+n["build"])
	if baseImages(p.next) == "loaded" {
		m.nextLoads++
	}
	return nil
}

func runnerImageRows(rep *Report, withCache bool, m runnerImageSamples) {
	cold, next := summarize(m.cold), summarize(m.next)
	ratio := speedup(cold, next)
	nextName := "  next job of the project, layer cache on (base images found, build from cache)"
	nextNote := fmt.Sprintf("%.1f× faster than cold: job B's daemon opens job A's data root, so its base images are there (no load) and every build step is cached", ratio)
	if m.nextLoads > 0 {
		nextNote = fmt.Sprintf("%.1f× faster than cold; in %d of %d runs job B found no base images and loaded them again", ratio, m.nextLoads, len(m.next))
	}
	if ratio < 10 {
		nextNote += "; below the 10× target"
	}
	if !withCache {
		nextName = "  next job of the project (no layer cache in this build)"
		nextNote = fmt.Sprintf("%.2f×: this build of dind-executor refuses [cache] layers = \"project\", so job B loads and builds from scratch too", ratio)
	}
	rep.Baselines = append(rep.Baselines, Baseline{Key: "B6b",
		Description: "the runner image's cold job in a fresh sandbox: docker load of the saved base images (in place of the FROM pulls) plus the cold build; ratio = next job ÷ cold"})
	rep.Rows = append(rep.Rows,
		Row{Section: "6b", Key: "runner_image_cold", Name: "runner image (repo Dockerfile: Go compile, vendored modules): cold, fresh sandbox", Unit: "s", Product: cold,
			Note: "base images loaded from the bench's saved archive (no registry reachable), then docker build; timed inside the job"},
		Row{Section: "6b", Key: "runner_image_cold_load", Name: "  of which: docker load of GO_IMAGE and RUNNER_IMAGE", Unit: "s", Product: summarize(m.coldLoad)},
		Row{Section: "6b", Key: "runner_image_cold_build", Name: "  of which: docker build", Unit: "s", Product: summarize(m.coldBuild)},
		Row{Section: "6b", Key: "runner_image_next_job", Name: nextName, Unit: "s", Product: next, Baseline: cold, BaselineKey: "B6b",
			Target: "≥ 10× faster than cold", Met: boolPtr(withCache && ratio >= 10), Note: nextNote},
		Row{Section: "6b", Key: "runner_image_next_build", Name: "  of which: docker build", Unit: "s", Product: summarize(m.nextBuild),
			Note: "the rest is `docker image inspect` finding the base images"},
	)
}
