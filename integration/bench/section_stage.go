package main

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	"gitlab.com/dind-executor/dind-executor/executor"
)

// Milestones of one empty stage, for the hook and for the CLI.
var stageMilestones = []string{
	"process started",
	"exec created (process start, config, client, API ping)",
	"exec started (attach)",
	"exec ended (runc exec, bash runs `exit 0`)",
	"process exited (stream end, exec inspect, exit)",
}

// stageSection: row 2, the run hook with an empty script against the
// docker CLI's exec round trip (B2), in the same build container,
// interleaved.
func stageSection(ctx context.Context, b *bench, rep *Report) error {
	if !b.opts.wants("stage") {
		return nil
	}
	events := startEventLog(ctx, b.api)
	defer events.close()
	var hookRuns, cliRuns []hookRun
	var build string
	err := b.withSandbox(ctx, "bench-stage", func(s *session) error {
		build = s.sandbox.name(executor.RoleBuild)
		var err error
		hookRuns, cliRuns, err = emptyStages(ctx, b, s, build)
		return err
	})
	if err != nil {
		return err
	}
	events.settle()
	hookMS, hookWall := stageTimeline(events, build, hookRuns)
	cliMS, cliWall := stageTimeline(events, build, cliRuns)
	h, c := summarize(hookWall), summarize(cliWall)
	rep.Baselines = append(rep.Baselines, Baseline{Key: "B2",
		Description: "`docker exec -i <build container> bash < script` by the docker CLI (same container, same script), timed like the hook: fork to exit"})
	rep.Rows = append(rep.Rows, Row{
		Section: "2", Key: "stage_empty", Name: "run hook, empty stage (`exit 0`)", Unit: "ms",
		Product: h, Baseline: c, BaselineKey: "B2",
		Target: "≤ 50 ms median, < baseline", Met: boolPtr(h != nil && c != nil && h.Median <= 50 && h.Median < c.Median),
	})
	hp := hookMS.profile("run hook, empty stage (Engine exec events)", "target: one empty stage ≤ 50 ms median and faster than the CLI", "")
	cp := cliMS.profile("baseline B2: docker exec CLI, empty stage", "for comparison", "")
	names := stageMilestones
	hp.Reading = fmt.Sprintf("The hook takes %.0f ms before its exec exists (the CLI %.0f ms), %.0f ms inside the Engine from exec create to exec end (the CLI %.0f ms), and %.0f ms after (the CLI %.0f ms).",
		stepAt(hp, names[1]), stepAt(cp, names[1]), stepAt(hp, names[3])-stepAt(hp, names[1]), stepAt(cp, names[3])-stepAt(cp, names[1]),
		stepDelta(hp, names[4]), stepDelta(cp, names[4]))
	rep.Profiles = append(rep.Profiles, hp, cp)
	return nil
}

// emptyStages runs the empty stage through the hook and the CLI, 2
// warm-ups each (page cache, the Engine's exec path), then the samples.
func emptyStages(ctx context.Context, b *bench, s *session, build string) (hooks, clis []hookRun, err error) {
	script, err := s.attempt.WriteScript("exit 0\n")
	if err != nil {
		return nil, nil, err
	}
	samples := 4 * b.opts.runs
	if b.opts.quick {
		samples = 5
	}
	b.log.printf("empty stage: %d run hooks and %d docker exec CLI round trips, interleaved", samples, samples)
	hook := func() (hookRun, error) { return s.hook(ctx, keepLines, "run", script, "build_script") }
	cli := func() (hookRun, error) { return measure(dockerExec(ctx, s, build), keepLines, script) }
	for i := range samples + 2 {
		h, err := hook()
		if err != nil {
			return nil, nil, err
		}
		c, err := cli()
		if err != nil {
			return nil, nil, err
		}
		if i >= 2 {
			hooks, clis = append(hooks, h), append(clis, c)
		}
	}
	return hooks, clis, nil
}

// dockerExec is the docker executor's way into the build container: the
// docker CLI, started like the hook (same cwd, own process group).
func dockerExec(ctx context.Context, s *session, build string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "docker", "exec", "-i", build, "bash")
	cmd.Dir = s.attempt.TempDir
	return cmd
}

// stageTimeline places each run's exec events in build.
func stageTimeline(events *eventLog, build string, runs []hookRun) (*milestones, []float64) {
	names := stageMilestones
	m := newMilestones(names...)
	var wall []float64
	for _, r := range runs {
		wall = append(wall, millis(r.Wall))
		marks := map[string]time.Time{names[0]: r.Start, names[4]: r.End}
		marks[names[1]], _ = events.first(r.Start, r.End, "container", "exec_create", build)
		marks[names[2]], _ = events.first(r.Start, r.End, "container", "exec_start", build)
		marks[names[3]], _ = events.first(r.Start, r.End, "container", "exec_die", build)
		m.add(r.Start, marks)
	}
	return m, wall
}
