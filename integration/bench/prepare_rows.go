package main

import (
	"fmt"
	"strings"
	"time"

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

// prepareRows adds row 1 and the profiles of the prepare hook and of B1.
func prepareRows(rep *Report, events *eventLog, prepares []prepareSample, baselines []baselineSample) {
	prepMS := newMilestones(msHookStart, msFirstLine, msNetwork, msVolumes, msDaemonCreate, msDaemonStart,
		msStartingUp, msContainerd, msLoading, msListening, msReady, msHookExit)
	var prepareS, prepareRSS, readyS, jobContainers []float64
	for _, p := range prepares {
		prepareS = append(prepareS, seconds(p.run.Wall))
		prepareRSS = append(prepareRSS, megabytes(p.run.MaxRSSKB*1024))
		marks, started, helper := prepareMarks(events, p)
		if ready := marks[msReady]; !started.IsZero() && !ready.IsZero() {
			readyS = append(readyS, seconds(ready.Sub(started)))
		}
		if !started.IsZero() && !helper.IsZero() {
			jobContainers = append(jobContainers, millis(helper.Sub(started)))
		}
		prepMS.add(p.run.Start, marks)
	}
	baseMS := newMilestones(msBaseBegin, msBaseVolume, msBaseCreate, msBaseStart, msBaseCerts, msBaseCopied,
		msStartingUp, msContainerd, msLoading, msListening, msBaseReady)
	var baseS, baseReadyS []float64
	for _, s := range baselines {
		d, m := s.daemon, s.marks
		baseS, baseReadyS = append(baseS, seconds(d.Ready.Sub(d.Begin))), append(baseReadyS, seconds(d.Ready.Sub(d.Started)))
		baseMS.add(d.Begin, map[string]time.Time{
			msBaseBegin: d.Begin, msBaseVolume: d.VolumeMade, msBaseCreate: d.Created, msBaseStart: d.Started,
			msBaseCerts: m.CertsDone, msBaseCopied: d.CertsCopied, msStartingUp: m.StartingUp,
			msContainerd: m.ContainerdU, msLoading: m.LoadingFrom, msListening: m.Listening, msBaseReady: d.Ready,
		})
	}

	rep.Baselines = append(rep.Baselines, Baseline{Key: "B1",
		Description: "docker:dind service style: the same daemon image, security profile (capabilities), private bridge with the docker alias, data-root volume and --mtu, started with DOCKER_TLS_CERTDIR=/certs and no certificates, so its entrypoint makes RSA-4096 CA/server/client keys; ready = /_ping over mutual TLS with the client certs it generated (copied out with CopyFromContainer, 50 ms polls). Timed from the first API call; no build or helper container (prepare makes both)"})
	prep := summarize(prepareS)
	rep.Rows = append(rep.Rows,
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
	bp := baseMS.profile("baseline B1: docker:dind-style daemon making its own certificates",
		"for comparison with the prepare profile", "")
	bp.Reading = readingBaseline(bp)
	rep.Profiles = append(rep.Profiles, p, bp)
}

// prepareMarks places one prepare hook's milestones, and says when its
// daemon and its helper container started.
func prepareMarks(events *eventLog, p prepareSample) (marks map[string]time.Time, daemonStarted, helperStarted time.Time) {
	from, to, sb := p.run.Start, p.run.End, p.sandbox
	marks = map[string]time.Time{msHookStart: from, msHookExit: to,
		msStartingUp: p.marks.StartingUp, msContainerd: p.marks.ContainerdU, msLoading: p.marks.LoadingFrom, msListening: p.marks.Listening}
	marks[msFirstLine], _ = p.run.lineAt("Preparing dind-executor sandbox")
	marks[msNetwork], _ = events.first(from, to, "network", "create", sb.network)
	daemonCreated, _ := events.first(from, to, "container", "create", sb.name(executor.RoleDaemon))
	marks[msDaemonCreate] = daemonCreated
	// The sandbox's volumes the daemon needs (its data root) come before
	// it; the others (builds, the project's cache) may come later.
	if !daemonCreated.IsZero() {
		marks[msVolumes], _ = events.lastMatching(from, daemonCreated, "volume", "create", func(name string) bool {
			return strings.Contains(name, sb.id)
		})
	}
	daemonStarted, _ = events.first(from, to, "container", "start", sb.name(executor.RoleDaemon))
	marks[msDaemonStart] = daemonStarted
	marks[msReady], _ = p.run.lineAt("ready in")
	helperStarted, _ = events.first(from, to, "container", "start", sb.name(executor.RoleHelper))
	return marks, daemonStarted, helperStarted
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

// stepAt is the median offset of the named milestone, NaN when absent.
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
