package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor"
)

// fleetHosts is the [engine] hosts of row 9's second config: the local
// Engine under two names (/var/run is a symlink to /run on Debian), so the
// figures are the fleet's own work (placement: lock, each Engine's load,
// the mark; every later hook asking each Engine where the sandbox is), not
// a difference between Engines.
var fleetHosts = []string{"unix:///var/run/docker.sock", "unix:///run/docker.sock"}

// What [engine] hosts may add to a hook over one Engine: the median of the
// paired differences (2 Engines − one), in ms. The run hook's is the one
// that counts most: a job pays it at every stage.
const (
	hostsRunTargetMS       = 30.0 // run hook, empty stage: the whole hook
	hostsPlacementTargetMS = 50.0 // prepare: hook start → the sandbox's network created
	hostsCleanupTargetMS   = 30.0 // cleanup: hook start → the first container killed
)

// hostsWarmups are the empty stages run in each new sandbox before the
// samples, as the stage section does.
const hostsWarmups = 2

// hostsConfig is one of the two configs row 9 compares.
type hostsConfig struct {
	name    string
	path    string
	project benchProject
	fleet   bool // prepare must say where it placed the sandbox
}

// hostsHook is one measured hook and the sandbox it ran on.
type hostsHook struct {
	run hookRun
	sb  sandbox
}

// hostsSamples are one config's hooks; the two configs' slices pair up by
// index: the same round, or the same round and stage.
type hostsSamples struct {
	prepare, run, cleanup []hostsHook
}

// hostsSection: row 9, what several Engines ([engine] hosts) cost a job's
// hooks against one Engine, in the same invocation, interleaved. Each
// round prepares a sandbox with each config, runs empty stages in the two
// alternately, and cleans both up; the config that goes first alternates.
func hostsSection(ctx context.Context, b *bench, rep *Report) error {
	if !b.opts.wants("hosts") {
		return nil
	}
	if err := checkOneEngine(fleetHosts, os.Getenv("DOCKER_HOST")); err != nil {
		return fmt.Errorf("[engine] hosts must name the Engine the product config uses: %w", err)
	}
	fleetConfig, err := b.hostsConfig(ctx)
	if err != nil {
		return err
	}
	if fleetConfig == "" {
		rep.Notes = append(rep.Notes, "row 9 not measured: this build of dind-executor does not accept [engine] hosts")
		return nil
	}
	lock := placementLockFile(fleetHosts)
	// The memory notes beside it (executor/placementmemory.go) are this
	// invocation's to remove when it made them.
	notes := strings.TrimSuffix(lock, ".lock") + ".memory"
	if _, err := os.Lstat(notes); errors.Is(err, fs.ErrNotExist) {
		defer func() {
			if err := os.Remove(notes); err == nil {
				rep.Notes = append(rep.Notes, "removed at the end: the placement memory notes "+notes+" the 2-Engine prepares made")
			}
		}()
	}
	_, statErr := os.Stat(lock)
	lockExisted := statErr == nil
	if lockExisted {
		rep.Notes = append(rep.Notes, fmt.Sprintf("row 9: the placement lock file %s was there before this invocation: left in place", lock))
	} else {
		defer func() {
			note := removePlacementLock(lock)
			b.log.printf("%s", note)
			rep.Notes = append(rep.Notes, note)
		}()
	}

	cfgs := [2]hostsConfig{
		{name: "one Engine", path: b.product.configPath, project: b.inv.newProject("hosts-one")},
		{name: fmt.Sprintf("%d Engines", len(fleetHosts)), path: fleetConfig, project: b.inv.newProject("hosts-fleet"), fleet: true},
	}
	stages := 4
	if b.opts.quick {
		stages = 5
	}
	events := startEventLog(ctx, b.api)
	defer events.close()
	var samples [2]hostsSamples
	for round := range b.opts.runs {
		b.log.printf("[engine] hosts, round %d/%d: prepare, %d empty stages and cleanup with each config, interleaved", round+1, b.opts.runs, stages)
		if err := hostsRound(ctx, b, cfgs, round, stages, &samples); err != nil {
			return err
		}
	}
	events.settle()
	hostsRows(rep, events, samples)
	return nil
}

// hostsConfig writes the product config with [engine] hosts and returns
// its path, or "" when the binary refuses it (the config hook validates
// the whole file).
func (b *bench) hostsConfig(ctx context.Context) (string, error) {
	text, err := withEngineHosts(b.product.config, fleetHosts)
	if err != nil {
		return "", err
	}
	path, err := b.product.writeConfigText("config-hosts.toml", text)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, b.product.binary, "--config", path, "config")
	cmd.Dir = b.product.work
	if out, err := cmd.CombinedOutput(); err != nil {
		b.log.printf("config with [engine] hosts refused: %v: %s", err, strings.TrimSpace(string(out)))
		return "", nil
	}
	return path, nil
}

// hostsRound prepares a sandbox with each config, runs hostsWarmups and
// then stages empty stages in each, alternately, and cleans both up,
// adding every sample to samples. Whatever was prepared is cleaned up,
// also on an error.
func hostsRound(ctx context.Context, b *bench, cfgs [2]hostsConfig, round, stages int, samples *[2]hostsSamples) (err error) {
	var sess [2]*session
	var cleaned [2]bool
	order := pairOrder(round)
	defer func() {
		for _, i := range order {
			if sess[i] != nil && !cleaned[i] {
				_, cerr := sess[i].cleanup(ctx)
				err = errors.Join(err, cerr)
			}
		}
	}()
	for _, i := range order {
		c := cfgs[i]
		if sess[i], err = b.newSession(ctx, c.path, c.project, "bench-hosts"); err != nil {
			return err
		}
		run, err := sess[i].prepare(ctx, b.api)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		if _, placed := run.lineAt(" placed on "); placed != c.fleet {
			return fmt.Errorf("%s: prepare placed the sandbox = %v, want %v (the config did not select the machinery measured):\n%s", c.name, placed, c.fleet, run.text(20))
		}
		samples[i].prepare = append(samples[i].prepare, hostsHook{run, sess[i].sandbox})
	}
	var scripts [2]string
	for i, s := range sess {
		if scripts[i], err = s.attempt.WriteScript("exit 0\n"); err != nil {
			return err
		}
	}
	for j := range hostsWarmups + stages {
		for _, i := range pairOrder(round + j) {
			run, err := sess[i].hook(ctx, keepLines, "run", scripts[i], "build_script")
			if err != nil {
				return fmt.Errorf("%s: run hook: %w", cfgs[i].name, err)
			}
			if j >= hostsWarmups {
				samples[i].run = append(samples[i].run, hostsHook{run, sess[i].sandbox})
			}
		}
	}
	for _, i := range order {
		run, err := sess[i].cleanup(ctx)
		cleaned[i] = true
		if err != nil {
			return fmt.Errorf("%s: %w", cfgs[i].name, err)
		}
		samples[i].cleanup = append(samples[i].cleanup, hostsHook{run, sess[i].sandbox})
	}
	return nil
}

// pairOrder is which config goes first in pair n: one Engine on even n,
// the fleet on odd n, so neither always finds the Engine just used.
func pairOrder(n int) [2]int {
	if n%2 == 0 {
		return [2]int{0, 1}
	}
	return [2]int{1, 0}
}

// hostsRows adds row 9 from the two configs' samples: each hook's wall
// time, and the part of it where the fleet's work falls, read from the
// Engine's events: before the sandbox's first network (placement), before
// the stage's exec (locate), before the first container is killed
// (locate, then teardown).
func hostsRows(rep *Report, events *eventLog, samples [2]hostsSamples) {
	var prepS, prepMS, toNetwork, runMS, toExec, cleanS, cleanMS, toKill [2][]float64
	for i, s := range samples {
		for _, h := range s.prepare {
			prepS[i], prepMS[i] = append(prepS[i], seconds(h.run.Wall)), append(prepMS[i], millis(h.run.Wall))
			at, ok := events.first(h.run.Start, h.run.End, "network", "create", h.sb.network)
			toNetwork[i] = append(toNetwork[i], sinceStart(h.run, at, ok))
		}
		for _, h := range s.run {
			runMS[i] = append(runMS[i], millis(h.run.Wall))
			at, ok := events.first(h.run.Start, h.run.End, "container", "exec_create", h.sb.name(executor.RoleBuild))
			toExec[i] = append(toExec[i], sinceStart(h.run, at, ok))
		}
		for _, h := range s.cleanup {
			cleanS[i], cleanMS[i] = append(cleanS[i], seconds(h.run.Wall)), append(cleanMS[i], millis(h.run.Wall))
			at, ok := events.firstMatching(h.run.Start, h.run.End, "container", "kill", h.sb.hasContainer)
			toKill[i] = append(toKill[i], sinceStart(h.run, at, ok))
		}
	}
	rep.Baselines = append(rep.Baselines, Baseline{Key: "B9",
		Description: "the same hook with the bench's product config: one Engine (no [engine] table: the local socket), in its own sandbox, interleaved with the " +
			"[engine] hosts config in the same invocation, which of the two goes first alternating; in row 9 the ratio is 2 Engines ÷ one, and the note gives " +
			"the median of the paired differences, which the targets are on"})
	n := len(fleetHosts)
	rep.Rows = append(rep.Rows,
		hostsRow(Row{Key: "hosts_prepare", Unit: "s", Name: fmt.Sprintf("prepare hook, %d Engines ([engine] hosts) vs one", n)},
			prepS, prepMS, 0),
		hostsRow(Row{Key: "hosts_prepare_placement", Unit: "ms", Name: "  of which: hook start → sandbox network created (placement: lock, each Engine's load, mark)"},
			toNetwork, toNetwork, hostsPlacementTargetMS),
		hostsRow(Row{Key: "hosts_stage_empty", Unit: "ms", Name: fmt.Sprintf("run hook, empty stage (`exit 0`), %d Engines vs one", n)},
			runMS, runMS, hostsRunTargetMS),
		hostsRow(Row{Key: "hosts_stage_to_exec", Unit: "ms", Name: "  of which: hook start → exec created (locate: each Engine asked)"},
			toExec, toExec, 0),
		hostsRow(Row{Key: "hosts_cleanup", Unit: "s", Name: fmt.Sprintf("cleanup hook, %d Engines vs one", n)},
			cleanS, cleanMS, 0),
		hostsRow(Row{Key: "hosts_cleanup_to_kill", Unit: "ms", Name: "  of which: hook start → first sandbox container killed (locate, teardown's lists)"},
			toKill, toKill, hostsCleanupTargetMS),
	)
	rep.Notes = append(rep.Notes, fmt.Sprintf("row 9: [engine] hosts = [%s] names the local Engine %d times (the same socket under two paths): "+
		"the figures are the fleet's own work, with every Engine's calls landing on the one dockerd (more load on it than %d real Engines would see) and no network in between (less latency than tcp:// Engines)",
		strings.Join(fleetHosts, ", "), n, n))
}

// hostsRow completes a row of section 9: the fleet's figures (values[1],
// in r.Unit) against one Engine's (values[0], B9), the paired differences
// of the same samples in ms (ms), and, when limit > 0, the target on them.
func hostsRow(r Row, values, ms [2][]float64, limit float64) Row {
	r.Section, r.BaselineKey = "9", "B9"
	r.Product, r.Baseline = summarize(dropNaN(values[1])), summarize(dropNaN(values[0]))
	d := pairedDelta(ms[0], ms[1])
	r.Note = deltaNote(d, ms[0], ms[1])
	if limit > 0 {
		r.Target = fmt.Sprintf("≤ +%.0f ms median over B9 (paired)", limit)
		r.Met = boolPtr(d != nil && d.Median <= limit)
	}
	return r
}

// sinceStart is at in ms since the hook started, NaN when the event was
// not seen (the pair is then left out of the differences).
func sinceStart(r hookRun, at time.Time, ok bool) float64 {
	if !ok {
		return nan()
	}
	return millis(at.Sub(r.Start))
}

// hasContainer says whether name is one of the sandbox's containers.
func (sb sandbox) hasContainer(name string) bool {
	for _, n := range sb.containers {
		if n == name {
			return true
		}
	}
	return false
}

// pairedDelta summarizes several[i] − one[i] over the pairs where both
// figures exist; nil without any.
func pairedDelta(one, several []float64) *Stat {
	var d []float64
	for i := range min(len(one), len(several)) {
		if !math.IsNaN(one[i]) && !math.IsNaN(several[i]) {
			d = append(d, several[i]-one[i])
		}
	}
	return summarize(d)
}

// deltaNote says what the fleet added, in ms: the median of the paired
// differences with their range, and the difference of the medians.
func deltaNote(d *Stat, oneMS, severalMS []float64) string {
	if d == nil {
		return "no pair of samples to compare"
	}
	return fmt.Sprintf("2 Engines − one: %+.1f ms median of %d paired differences [%+.1f … %+.1f]; difference of the medians %+.1f ms",
		d.Median, d.N, d.Min, d.Max, medianOf(dropNaN(severalMS))-medianOf(dropNaN(oneMS)))
}

func dropNaN(xs []float64) []float64 {
	return slices.DeleteFunc(slices.Clone(xs), math.IsNaN)
}

// checkOneEngine checks that every host is a unix socket and that all of
// them, and the Engine of a config without [engine] (DOCKER_HOST, or the
// client's default socket), are the same socket file.
func checkOneEngine(hosts []string, dockerHost string) error {
	if dockerHost == "" {
		dockerHost = client.DefaultDockerHost
	}
	var first os.FileInfo
	for _, h := range append([]string{dockerHost}, hosts...) {
		path, ok := strings.CutPrefix(h, "unix://")
		if !ok {
			return fmt.Errorf("%s is not a unix socket (DOCKER_HOST=%q)", h, os.Getenv("DOCKER_HOST"))
		}
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSocket == 0 {
			return fmt.Errorf("%s is not a socket", path)
		}
		if first != nil && !os.SameFile(first, fi) {
			return fmt.Errorf("%s is another socket than %s", h, dockerHost)
		}
		first = fi
	}
	return nil
}

// withEngineHosts is config with [engine] hosts set: added to the config's
// own [engine] table, or in a table of its own at the end. A config that
// names its Engine already (host, hosts, or engine.* keys outside the
// table) is refused: the list would replace or contradict it.
func withEngineHosts(config string, hosts []string) (string, error) {
	quoted := make([]string, len(hosts))
	for i, h := range hosts {
		quoted[i] = strconv.Quote(h)
	}
	setting := "hosts = [" + strings.Join(quoted, ", ") + "]"
	lines := strings.Split(config, "\n")
	table, header := "", -1
	for i, line := range lines {
		text, _, _ := strings.Cut(line, "#")
		text = strings.TrimSpace(text)
		switch {
		case text == "":
		case strings.HasPrefix(text, "[[") && strings.HasSuffix(text, "]]"):
			table = strings.TrimSpace(text[2 : len(text)-2])
		case strings.HasPrefix(text, "[") && strings.HasSuffix(text, "]"):
			table = strings.TrimSpace(text[1 : len(text)-1])
			if table == "engine" {
				header = i
			}
		default:
			key, _, _ := strings.Cut(text, "=")
			key = strings.TrimSpace(key)
			if table == "" && (key == "engine" || strings.HasPrefix(key, "engine.")) {
				return "", fmt.Errorf("the config sets %s outside an [engine] table: cannot add hosts to it", key)
			}
			if table == "engine" && (key == "host" || key == "hosts") {
				return "", fmt.Errorf("the config's [engine] sets %s already: [engine] hosts would contradict it", key)
			}
		}
	}
	if header < 0 {
		return strings.TrimRight(config, "\n") + "\n\n[engine]\n" + setting + "\n", nil
	}
	lines = slices.Insert(lines, header+1, setting)
	return strings.Join(lines, "\n"), nil
}

// placementLockFile is the file dind-executor's prepare locks while it
// places a sandbox on one of hosts (executor/placementlock.go: in /tmp,
// named after an FNV-64a hash of the hosts). It stays after the hook.
func placementLockFile(hosts []string) string {
	h := fnv.New64a()
	h.Write([]byte(strings.Join(hosts, "\x00")))
	return filepath.Join("/tmp", fmt.Sprintf("dind-executor-placement-%x.lock", h.Sum64()))
}

// removePlacementLock removes the lock file the section's prepares made,
// holding the lock meanwhile so that no placement is under way, and says
// what it did.
func removePlacementLock(path string) string {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Sprintf("row 9: no placement lock file at %s after the 2-Engine prepares: dind-executor names it otherwise now (executor/placementlock.go); look in /tmp and update placementLockFile", path)
	}
	if err != nil {
		return fmt.Sprintf("WARNING: placement lock file %s: %v (remove it by hand)", path, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Sprintf("WARNING: placement lock file %s is held by another process, left in place (%v)", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Sprintf("WARNING: could not remove placement lock file %s: %v", path, err)
	}
	return fmt.Sprintf("removed at the end: the placement lock file %s the 2-Engine prepares made (dind-executor leaves it in /tmp by design)", path)
}
