package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gitlab.com/dind-executor/dind-executor/integration/runner"
)

// dockerExecutorReference is the figure quoted for a light job on the
// docker executor + docker:dind TLS service on this machine kind. It cannot
// be measured here (no gitlab-runner binary).
const dockerExecutorReference = 5.2

// jobSection: row 5, whole light jobs through the runner emulator.
func jobSection(ctx context.Context, b *bench, rep *Report) error {
	if !b.opts.wants("job") {
		return nil
	}
	e := b.product.emulator(b.product.configPath)
	project := b.inv.newProject("light")
	var walls []float64
	var profile *milestones
	for i := range b.opts.runs {
		b.log.printf("light job %d/%d through the runner emulator", i+1, b.opts.runs)
		res, wall, err := runJob(ctx, e, b.lightJob(project))
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
	w := summarize(walls)
	ref := dockerExecutorReference
	rep.Rows = append(rep.Rows, Row{
		Section: "5", Key: lightJobKey, Name: "whole light job (config → prepare → stages with `docker info` → cleanup)", Unit: "s",
		Product: w, Reference: &ref, ReferenceName: "R5, quoted, not measured here",
		Target: fmt.Sprintf("≤ %.2f s (half of %.1f s)", ref/2, ref), Met: boolPtr(w != nil && w.Median <= ref/2),
	})
	rep.Baselines = append(rep.Baselines, Baseline{Key: "R5",
		Description: fmt.Sprintf("NOT MEASURED HERE: %.1f s median, the figure quoted for the same light job on the docker executor + docker:dind TLS service on this machine kind (no gitlab-runner binary on this machine to run it)", ref)})
	p := profile.profile("whole light job through the runner emulator (each hook's end; step = the hook plus the emulator's gap before it)",
		"target: whole light job ≤ half of 5.2 s", "")
	p.Reading = readingJob(p)
	rep.Profiles = append(rep.Profiles, p)
	return nil
}

// lightJobKey is row 5's key; the concurrency section compares with it.
const lightJobKey = "light_job"

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
