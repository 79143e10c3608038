package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gitlab.com/dind-executor/dind-executor/executor"
)

// prepareSample is one prepare hook with what the Engine and the daemon's
// log said meanwhile.
type prepareSample struct {
	run     hookRun
	marks   daemonLogMarks
	sandbox sandbox
}

// baselineSample is one docker:dind-style daemon, started and removed.
type baselineSample struct {
	daemon  *baselineDaemon
	marks   daemonLogMarks
	removal time.Duration
}

// prepareSection: rows 1 and 4. Cold prepares and their cleanups, hook by
// hook, each followed by the docker:dind-style baseline daemon (B1), which
// is then removed the docker executor's way (B4).
func prepareSection(ctx context.Context, b *bench, rep *Report) error {
	if !b.opts.wants("prepare", "cleanup") {
		return nil
	}
	events := startEventLog(ctx, b.api)
	defer events.close()
	mtu := outerMTU(ctx, b.api)
	project := b.inv.newProject("hooks")
	var prepares []prepareSample
	var baselines []baselineSample
	var cleanupS []float64
	for i := range b.opts.runs {
		b.log.printf("prepare %d/%d", i+1, b.opts.runs)
		p, cleanup, err := coldPrepare(ctx, b, b.product.configPath, project, "bench-prepare")
		if err != nil {
			return err
		}
		prepares, cleanupS = append(prepares, p), append(cleanupS, seconds(cleanup))
		b.log.printf("baseline %d/%d: docker:dind-style daemon generating its own RSA-4096 certificates", i+1, b.opts.runs)
		base, err := baselineRun(ctx, b, i, mtu)
		if err != nil {
			return err
		}
		baselines = append(baselines, base)
	}
	events.settle()

	if b.opts.wants("prepare") {
		prepareRows(rep, events, prepares, baselines)
	}
	if b.opts.wants("cleanup") {
		var removal []float64
		for _, s := range baselines {
			removal = append(removal, seconds(s.removal))
		}
		rep.Baselines = append(rep.Baselines, Baseline{Key: "B4",
			Description: "force-remove the baseline daemon container, then its volume and network through the API (what the docker executor does with a service at the end of a job; one container where the sandbox has three)"})
		rep.Rows = append(rep.Rows, Row{
			Section: "4", Key: "cleanup", Name: "cleanup hook (3 containers, volumes, network)", Unit: "s",
			Product: summarize(cleanupS), Baseline: summarize(removal), BaselineKey: "B4",
		})
	}
	return nil
}

// coldPrepare prepares a fresh sandbox of a job named jobName with the
// config at configPath, reads its daemon's log, and cleans it up, timing
// both hooks.
func coldPrepare(ctx context.Context, b *bench, configPath string, project benchProject, jobName string) (prepareSample, time.Duration, error) {
	s, err := b.newSession(ctx, configPath, project, jobName)
	if err != nil {
		return prepareSample{}, 0, err
	}
	run, err := s.prepare(ctx, b.api)
	sample := prepareSample{run: run, sandbox: s.sandbox}
	if err == nil {
		var logErr error
		if sample.marks, logErr = readDaemonLog(ctx, b.api, s.sandbox.name(executor.RoleDaemon)); logErr != nil {
			b.log.printf("daemon log: %v", logErr)
		}
	}
	cleanup, cerr := s.cleanup(ctx)
	return sample, cleanup.Wall, errors.Join(err, cerr)
}

// baselineRun starts a baseline daemon, reads its log and removes it.
func baselineRun(ctx context.Context, b *bench, i, mtu int) (baselineSample, error) {
	d, err := startBaseline(ctx, b.api, b.inv, i, mtu)
	if err != nil {
		_, _ = removeBaseline(context.WithoutCancel(ctx), b.api, d)
		return baselineSample{}, err
	}
	marks, err := readDaemonLog(ctx, b.api, d.id)
	if err != nil {
		b.log.printf("baseline daemon log: %v", err)
	}
	removal, err := removeBaseline(context.WithoutCancel(ctx), b.api, d)
	if err != nil {
		return baselineSample{}, fmt.Errorf("remove baseline daemon: %w", err)
	}
	return baselineSample{daemon: d, marks: marks, removal: removal}, nil
}
