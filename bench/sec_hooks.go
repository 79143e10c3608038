package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor"
)

// Milestones of a prepare hook, in order.
const (
	msHookStart    = "prepare hook started"
	msFirstLine    = "first output line (Go start, config, Engine client)"
	msNetwork      = "network created (Engine ping, 3 image checks, CA + certs, MTU)"
	msVolumes      = "volumes made before the daemon (data root)"
	msDaemonCreate = "daemon container created"
	msDaemonStart  = "daemon container started (server certs copied in first)"
	msStartingUp   = "dockerd 'Starting up' (entrypoint: cert check, iptables probe, dind)"
	msContainerd   = "dockerd's managed containerd booted"
	msLoading      = "dockerd 'Loading containers: start' (containerd supervisor's wait)"
	msListening    = "dockerd listening on :2376 (networks, iptables, API)"
	msReady        = "mutual-TLS /_ping answered (prepare's ready line)"
	msHookExit     = "prepare hook exited"

	msBaseBegin  = "first API call"
	msBaseVolume = "network + data-root volume created"
	msBaseCreate = "daemon container created"
	msBaseStart  = "daemon container started"
	msBaseCerts  = "RSA-4096 CA, server, client certs made (entrypoint's openssl)"
	msBaseCopied = "client certs copied out (CopyFromContainer poll)"
	msBaseReady  = "mutual-TLS /_ping answered"
)

// prepareSample is one prepare hook with what dockerd logged meanwhile.
type prepareSample struct {
	run       hookRun
	marks     daemonLogMarks
	sandboxID string
}

// hookSections measures sections 1 to 4 hook by hook: cold prepares
// against the docker:dind-style baseline, and, in the first sandbox, the
// empty stage and the output throughput, then each sandbox's cleanup.
func (b *bencher) hookSections(ctx context.Context) error {
	wantPrepare, wantCleanup := b.sections["prepare"], b.sections["cleanup"]
	wantStage, wantOutput := b.sections["stage"], b.sections["output"]
	if !wantPrepare && !wantCleanup && !wantStage && !wantOutput {
		return nil
	}
	runs := b.opts.runs
	withBaseline := wantPrepare || wantCleanup
	if !withBaseline {
		runs = 1 // one sandbox for the stage and output rows
	}

	var prepares []prepareSample
	var prepareS, prepareRSS, cleanupS, baseS, baseReadyS, baseRemoveS []float64
	baseMS := newMilestones(msBaseBegin, msBaseVolume, msBaseCreate, msBaseStart, msBaseCerts, msBaseCopied,
		msStartingUp, msContainerd, msLoading, msListening, msBaseReady)
	for i := range runs {
		s, err := newSession(b, b.newJobID(), "bench-hooks")
		if err != nil {
			return err
		}
		b.progress("prepare %d/%d: sandbox %s", i+1, runs, s.sandboxID)
		pr, err := s.hook(ctx, keepLines, "prepare")
		if err != nil {
			_, _ = s.hook(context.WithoutCancel(ctx), keepLines, "cleanup")
			return fmt.Errorf("prepare hook: %w", err)
		}
		daemonName := executor.Identity{SandboxID: s.sandboxID}.Name(executor.RoleDaemon)
		marks, err := readDaemonLog(ctx, b.api, daemonName)
		if err != nil {
			b.progress("daemon log of %s: %v", daemonName, err)
		}
		prepares = append(prepares, prepareSample{run: pr, marks: marks, sandboxID: s.sandboxID})
		prepareS = append(prepareS, seconds(pr.Wall))
		prepareRSS = append(prepareRSS, megabytes(pr.MaxRSSKB*1024))

		var sectionErr error
		if i == 0 && wantStage {
			sectionErr = b.stageRows(ctx, s)
		}
		if i == 0 && wantOutput && sectionErr == nil {
			sectionErr = b.outputRows(ctx, s)
		}
		cl, err := s.hook(context.WithoutCancel(ctx), keepLines, "cleanup")
		if err := errors.Join(sectionErr, err); err != nil {
			return err
		}
		cleanupS = append(cleanupS, seconds(cl.Wall))

		if !withBaseline {
			continue
		}
		b.progress("baseline %d/%d: docker:dind-style daemon generating its own RSA-4096 certificates", i+1, runs)
		d, err := b.startBaseline(ctx, i)
		if err != nil {
			_, _ = b.removeBaseline(context.WithoutCancel(ctx), d)
			return err
		}
		dmarks, err := readDaemonLog(ctx, b.api, d.id)
		if err != nil {
			b.progress("baseline daemon log: %v", err)
		}
		removed, err := b.removeBaseline(context.WithoutCancel(ctx), d)
		if err != nil {
			return fmt.Errorf("remove baseline daemon: %w", err)
		}
		baseS = append(baseS, seconds(d.Ready.Sub(d.Begin)))
		baseReadyS = append(baseReadyS, seconds(d.Ready.Sub(d.Started)))
		baseRemoveS = append(baseRemoveS, seconds(removed))
		baseMS.add(d.Begin, map[string]time.Time{
			msBaseBegin: d.Begin, msBaseVolume: d.VolumeMade, msBaseCreate: d.Created, msBaseStart: d.Started,
			msBaseCerts: dmarks.CertsDone, msBaseCopied: d.CertsCopied, msStartingUp: dmarks.StartingUp,
			msContainerd: dmarks.ContainerdU, msLoading: dmarks.LoadingFrom, msListening: dmarks.Listening, msBaseReady: d.Ready,
		})
	}
	b.events.settle()

	if wantPrepare {
		b.prepareRows(prepares, prepareS, prepareRSS, baseS, baseReadyS, baseMS)
	}
	if wantCleanup {
		b.report.Baselines = append(b.report.Baselines, Baseline{Key: "B4",
			Description: "force-remove the baseline daemon container, then its volume and network through the API (what the docker executor does with a service at the end of a job; one container where the sandbox has three)"})
		b.report.Rows = append(b.report.Rows, Row{
			Section: "4", Key: "cleanup", Name: "cleanup hook (3 containers, volumes, network)", Unit: "s",
			Product: summarize(cleanupS), Baseline: summarize(baseRemoveS), BaselineKey: "B4",
		})
	}
	return nil
}

func (b *bencher) prepareRows(prepares []prepareSample, prepareS, prepareRSS, baseS, baseReadyS []float64, baseMS *milestones) {
	prepMS := newMilestones(msHookStart, msFirstLine, msNetwork, msVolumes, msDaemonCreate, msDaemonStart,
		msStartingUp, msContainerd, msLoading, msListening, msReady, msHookExit)
	var readyS, jobContainers []float64
	for _, p := range prepares {
		from, to := p.run.Start, p.run.End
		id := executor.Identity{SandboxID: p.sandboxID}
		marks := map[string]time.Time{msHookStart: p.run.Start, msHookExit: p.run.End,
			msStartingUp: p.marks.StartingUp, msContainerd: p.marks.ContainerdU, msLoading: p.marks.LoadingFrom, msListening: p.marks.Listening}
		marks[msFirstLine], _ = p.run.lineAt("Preparing dind-executor sandbox")
		marks[msNetwork], _ = b.events.first(from, to, "network", "create", id.Name(executor.RoleNetwork))
		daemonCreated, _ := b.events.first(from, to, "container", "create", id.Name(executor.RoleDaemon))
		marks[msDaemonCreate] = daemonCreated
		// The sandbox's volumes the daemon needs (its data root) come before
		// it; the others (builds, the project's cache) may come later.
		if !daemonCreated.IsZero() {
			marks[msVolumes], _ = b.events.lastMatching(from, daemonCreated, "volume", "create", func(name string) bool {
				return strings.Contains(name, p.sandboxID)
			})
		}
		started, ok := b.events.first(from, to, "container", "start", id.Name(executor.RoleDaemon))
		marks[msDaemonStart] = started
		ready, readyOK := p.run.lineAt("ready in")
		marks[msReady] = ready
		if ok && readyOK {
			readyS = append(readyS, seconds(ready.Sub(started)))
		}
		helper, hok := b.events.first(from, to, "container", "start", id.Name(executor.RoleHelper))
		if ok && hok {
			jobContainers = append(jobContainers, millis(helper.Sub(started)))
		}
		prepMS.add(p.run.Start, marks)
	}

	b.report.Baselines = append(b.report.Baselines, Baseline{Key: "B1",
		Description: "docker:dind service style: the same daemon image, security profile (capabilities), private bridge with the docker alias, data-root volume and --mtu, started with DOCKER_TLS_CERTDIR=/certs and no certificates, so its entrypoint makes RSA-4096 CA/server/client keys; ready = /_ping over mutual TLS with the client certs it generated (copied out with CopyFromContainer, 50 ms polls). Timed from the first API call; no build or helper container (prepare makes both)"})
	prep := summarize(prepareS)
	b.report.Rows = append(b.report.Rows,
		Row{Section: "1", Key: "prepare_ready", Name: "prepare hook → TLS daemon ready (cold sandbox)", Unit: "s",
			Product: prep, Baseline: summarize(baseS), BaselineKey: "B1",
			Target: "≤ 1.50 s median", Met: boolPtr(prep != nil && prep.Median <= 1.5)},
		Row{Section: "1", Key: "prepare_daemon_start_to_ready", Name: "  of which: daemon container start → ready", Unit: "s",
			Product: summarize(readyS), Baseline: summarize(baseReadyS), BaselineKey: "B1"},
		Row{Section: "1", Key: "prepare_rss", Name: "  prepare hook peak RSS", Unit: "MB", Product: summarize(prepareRSS)},
	)
	reading := fmt.Sprintf("build and helper containers are created and started while dockerd boots (helper started %.0f ms after the daemon, median), so they add nothing to the critical path. ", medianOf(jobContainers))
	p := prepMS.profile("prepare hook, cold sandbox (Engine events, dockerd's log, the hook's output lines)",
		"target: prepare to ready ≤ 1.5 s median", reading)
	p.Reading += readingPrepare(p)
	b.report.Profiles = append(b.report.Profiles, p)
	bp := baseMS.profile("baseline B1: docker:dind-style daemon making its own certificates",
		"for comparison with the prepare profile", "")
	bp.Reading = readingBaseline(bp)
	b.report.Profiles = append(b.report.Profiles, bp)
}

// stepDelta is the median step of the named milestone, NaN when absent.
func stepDelta(p Profile, name string) float64 {
	for _, s := range p.Steps {
		if s.Name == name {
			return s.Delta
		}
	}
	return nan()
}

func stepAt(p Profile, name string) float64 {
	for _, s := range p.Steps {
		if s.Name == name {
			return s.At
		}
	}
	return nan()
}

func readingPrepare(p Profile) string {
	before := stepAt(p, msDaemonStart)
	boot := stepAt(p, msListening) - before
	return fmt.Sprintf("Of %.0f ms, %.0f ms pass before the daemon container runs (of which %.0f ms in the Engine's container start), "+
		"%.0f ms from daemon start until dockerd listens (entrypoint %.0f ms; dockerd until containerd is up %.0f ms; "+
		"dockerd's wait for containerd %.0f ms (NaN: containerd was started ahead of dockerd, so dockerd logs no such wait); networks, iptables and API %.0f ms), "+
		"and %.0f ms from listening to the first authenticated ping plus the hook's exit.",
		p.Total, before, stepDelta(p, msDaemonStart), boot, stepDelta(p, msStartingUp), stepDelta(p, msContainerd),
		stepDelta(p, msLoading), stepDelta(p, msListening), p.Total-stepAt(p, msListening))
}

func readingBaseline(p Profile) string {
	return fmt.Sprintf("The entrypoint spends %.0f ms making RSA-4096 keys before dockerd even starts; dockerd then needs %.0f ms to listen "+
		"(%.0f ms of it waiting for its managed containerd), the same as in the sandbox.",
		stepDelta(p, msBaseCerts), stepAt(p, msListening)-stepAt(p, msStartingUp), stepDelta(p, msLoading))
}

// stageRows: section 2, the run hook with an empty script against the
// docker CLI's exec round trip, in the same build container.
func (b *bencher) stageRows(ctx context.Context, s *session) error {
	script, err := s.writeScript("empty-stage", "exit 0\n")
	if err != nil {
		return err
	}
	build := executor.Identity{SandboxID: s.sandboxID}.Name(executor.RoleBuild)
	samples := 4 * b.opts.runs
	if b.opts.quick {
		samples = 5
	}
	b.progress("empty stage: %d run hooks and %d docker exec CLI round trips, interleaved", samples, samples)
	hook := func() (hookRun, error) { return s.hook(ctx, keepLines, "run", script, "build_script") }
	cli := func() (hookRun, error) {
		return runMeasured(ctx, s.tmpDir, os.Environ(), keepLines, script, "docker", "exec", "-i", build, "bash")
	}
	for range 2 { // warm the page cache and the Engine's exec path for both
		if _, err := hook(); err != nil {
			return err
		}
		if _, err := cli(); err != nil {
			return err
		}
	}
	var hookRuns, cliRuns []hookRun
	for range samples {
		h, err := hook()
		if err != nil {
			return err
		}
		c, err := cli()
		if err != nil {
			return err
		}
		hookRuns, cliRuns = append(hookRuns, h), append(cliRuns, c)
	}
	b.events.settle()

	names := []string{"process started", "exec created (process start, config, client, API ping)", "exec started (attach)",
		"exec ended (runc exec, bash runs `exit 0`)", "process exited (stream end, exec inspect, exit)"}
	timeline := func(runs []hookRun) (*milestones, []float64) {
		m := newMilestones(names...)
		var wall []float64
		for _, r := range runs {
			wall = append(wall, millis(r.Wall))
			marks := map[string]time.Time{names[0]: r.Start, names[4]: r.End}
			marks[names[1]], _ = b.events.first(r.Start, r.End, "container", "exec_create", build)
			marks[names[2]], _ = b.events.first(r.Start, r.End, "container", "exec_start", build)
			marks[names[3]], _ = b.events.first(r.Start, r.End, "container", "exec_die", build)
			m.add(r.Start, marks)
		}
		return m, wall
	}
	hookMS, hookWall := timeline(hookRuns)
	cliMS, cliWall := timeline(cliRuns)
	h, c := summarize(hookWall), summarize(cliWall)
	met := h != nil && c != nil && h.Median <= 50 && h.Median < c.Median
	b.report.Baselines = append(b.report.Baselines, Baseline{Key: "B2",
		Description: "`docker exec -i <build container> bash < script` by the docker CLI (same container, same script), timed like the hook: fork to exit"})
	b.report.Rows = append(b.report.Rows, Row{
		Section: "2", Key: "stage_empty", Name: "run hook, empty stage (`exit 0`)", Unit: "ms",
		Product: h, Baseline: c, BaselineKey: "B2",
		Target: "≤ 50 ms median, < baseline", Met: boolPtr(met),
	})
	hp := hookMS.profile("run hook, empty stage (Engine exec events)", "target: one empty stage ≤ 50 ms median and faster than the CLI", "")
	cp := cliMS.profile("baseline B2: docker exec CLI, empty stage", "for comparison", "")
	hp.Reading = fmt.Sprintf("The hook takes %.0f ms before its exec exists (the CLI %.0f ms), %.0f ms inside the Engine from exec create to exec end (the CLI %.0f ms), and %.0f ms after (the CLI %.0f ms).",
		stepAt(hp, names[1]), stepAt(cp, names[1]), stepAt(hp, names[3])-stepAt(hp, names[1]), stepAt(cp, names[3])-stepAt(cp, names[1]),
		stepDelta(hp, names[4]), stepDelta(cp, names[4]))
	b.report.Profiles = append(b.report.Profiles, hp, cp)
	return nil
}

// outputRows: section 3, a stage printing N bytes through the run hook to
// a pipe the bench drains, for several N, with the hook's peak RSS.
func (b *bencher) outputRows(ctx context.Context, s *session) error {
	sizes := []int64{10 << 20, 100 << 20, 1 << 30}
	if b.opts.quick {
		sizes = sizes[:2]
	}
	build := executor.Identity{SandboxID: s.sandboxID}.Name(executor.RoleBuild)
	inspect, err := b.api.ContainerInspect(ctx, build, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("inspect build container: %w", err)
	}
	probe := newCPUProbe(inspect.Container.ID)
	b.report.Baselines = append(b.report.Baselines, Baseline{Key: "B3",
		Description: "the same script through `docker exec -i <build container> bash` by the docker CLI, stdout to a pipe the bench drains"})
	for i, size := range sizes {
		script, err := s.writeScript("output", fmt.Sprintf("head -c %d /dev/zero\n", size))
		if err != nil {
			return err
		}
		cliRuns := b.opts.runs
		if size >= 1<<30 {
			cliRuns = b.heavyRuns()
		}
		b.progress("output %s: %d run hooks and %d docker exec CLI runs", sizeName(size), b.opts.runs, cliRuns)
		var rate, rss, cliRate, cliRSS, cpu []float64
		hookCPU, cliCPU := map[string][]float64{}, map[string][]float64{}
		for i := range b.opts.runs {
			before := probe.sample()
			h, err := s.hook(ctx, discardData, "run", script, "build_script")
			if err != nil {
				return err
			}
			mid := probe.sample()
			if h.OutBytes != size {
				return fmt.Errorf("run hook delivered %d bytes of %d", h.OutBytes, size)
			}
			rate = append(rate, megabytes(size)/h.Wall.Seconds())
			rss = append(rss, megabytes(h.MaxRSSKB*1024))
			cpu = append(cpu, (h.UserCPU+h.SysCPU).Seconds()/h.Wall.Seconds())
			addCPU(hookCPU, h, mid.since(before))
			if i >= cliRuns {
				continue
			}
			c, err := runMeasured(ctx, s.tmpDir, os.Environ(), discardData, script, "docker", "exec", "-i", build, "bash")
			if err != nil {
				return err
			}
			after := probe.sample()
			if c.OutBytes != size {
				return fmt.Errorf("docker exec delivered %d bytes of %d", c.OutBytes, size)
			}
			addCPU(cliCPU, c, after.since(mid))
			cliRate = append(cliRate, megabytes(size)/c.Wall.Seconds())
			cliRSS = append(cliRSS, megabytes(c.MaxRSSKB*1024))
		}
		last := i == len(sizes)-1
		rateRow := Row{Section: "3", Key: "output_rate_" + sizeKey(size), Name: "output " + sizeName(size) + " through the run hook", Unit: "MB/s",
			Product: summarize(rate), Baseline: summarize(cliRate), BaselineKey: "B3", HigherIsBetter: true,
			Note: fmt.Sprintf("the hook used %.0f%% of one core (user+sys ÷ wall, median)", 100*medianOf(cpu))}
		if last {
			r := summarize(rate)
			rateRow.Target, rateRow.Met = "≥ 300 MB/s", boolPtr(r != nil && r.Median >= 300)
		}
		rssRow := Row{Section: "3", Key: "output_rss_" + sizeKey(size), Name: "  run hook peak RSS, " + sizeName(size), Unit: "MB",
			Product: summarize(rss), Baseline: summarize(cliRSS), BaselineKey: "B3",
			Target: "< 50 MB", Met: boolPtr(summarize(rss) != nil && summarize(rss).Max < 50)}
		if last {
			rssRow.Note = "met means every sample's peak stayed under 50 MB; compare the rows above: flat whatever the size"
		}
		b.report.Rows = append(b.report.Rows, rateRow, rssRow)
		if last {
			b.report.Profiles = append(b.report.Profiles, cpuProfile(size, hookCPU, cliCPU, medianOf(rate), medianOf(cliRate)))
		}
	}
	return nil
}

const cpuClient = "client (hook or CLI): reading the stream, writing the pipe"

// addCPU adds one run's CPU use per component, as % of one core over the
// run's wall time.
func addCPU(into map[string][]float64, r hookRun, host cpuSample) {
	wall := r.Wall.Seconds()
	into[cpuClient] = append(into[cpuClient], 100*(r.UserCPU+r.SysCPU).Seconds()/wall)
	total := (r.UserCPU + r.SysCPU).Seconds()
	for k, v := range host {
		into[k] = append(into[k], 100*v.Seconds()/wall)
		if k != cpuHost && k != cpuSteal {
			total += v.Seconds()
		}
	}
	into[cpuTotal] = append(into[cpuTotal], 100*total/wall)
}

const cpuTotal = "all of the above"

// cpuProfile says which process the output stream's CPU went to.
func cpuProfile(size int64, hook, cli map[string][]float64, hookRate, cliRate float64) Profile {
	p := Profile{
		Title:   fmt.Sprintf("CPU while %s of output streams through the run hook vs the docker CLI (%% of one core over the run's wall time; the host has %d)", sizeName(size), runtime.NumCPU()),
		Why:     "target: output ≥ 300 MB/s",
		Unit:    "%core",
		Columns: []string{"run hook", "docker CLI"},
	}
	for _, name := range []string{cpuClient, cpuDockerd, cpuShim, cpuContainer, cpuContainerd, cpuTotal, cpuHost, cpuSteal} {
		if len(hook[name]) == 0 {
			continue
		}
		p.Parts = append(p.Parts, Part{Name: name, Values: []float64{medianOf(hook[name]), medianOf(cli[name])}, N: len(hook[name])})
	}
	cores := float64(100 * runtime.NumCPU())
	total, host := medianOf(hook[cpuTotal]), medianOf(hook[cpuHost])
	p.Reading = fmt.Sprintf("The stream goes bash → pipe → containerd-shim → FIFO → dockerd → HTTP → client; every hop copies it once. "+
		"With the hook, these processes use %.0f%% of one core, the hook itself %.0f%%; the docker CLI on the same path gets %.0f MB/s to the hook's %.0f MB/s. "+
		"The whole host was busy %.0f%% of its %.0f%%. ",
		total, medianOf(hook[cpuClient]), cliRate, hookRate, host, cores)
	switch {
	case host >= 0.9*cores && total < 0.75*host:
		p.Reading += "The CPUs were saturated, largely by other work on the host: the stream got what was left. On an idle host the same chain runs faster; the hook's own share stays small."
	case host >= 0.9*cores:
		p.Reading += "The CPUs were saturated by the copy chain itself: the rate is bound by CPU, mostly outside the hook (dockerd and the shim copy every byte once more)."
	default:
		p.Reading += "The CPUs were not saturated: the rate is bound by the hand-offs along the Engine's stream path (each hop waits for the previous one), which the hook cannot change."
	}
	return p
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
