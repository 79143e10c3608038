package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// Several build hosts behind one runner ([engine] hosts), as an operator
// grows past one machine: two private dockerds, four jobs run with the
// runner's concurrency, each placed on one Engine and found there again by
// every later hook (separate processes, no state kept between them); none
// is lost, both Engines take a share, no sandbox object is left on either
// (each Engine keeps its own copy of the project's cache volume). Then the
// operator's commands cover both Engines: the pool fills each, ps lists
// both, drain empties both, gc removes a killed prepare's leftovers from
// the Engine it was on; and an Engine that does not answer is skipped with
// a word in the job log.
func TestSeveralBuildHostsBehindOneRunner(t *testing.T) {
	t.Parallel()
	removeNewPlacementLocks(t)
	hosts := make([]*privateEngine, 2)
	for i := range hosts {
		hosts[i] = startPrivateEngine(t)
		hosts[i].loadImages(t, seedjob.DaemonImage, seedjob.JobImage, seedjob.HelperImage)
	}
	engines := fmt.Sprintf("[engine]\nhosts = [%q, %q]\n", hosts[0].host, hosts[1].host)
	toml, trail := withAudit(t, engines+seedConfig())
	e := newEmulator(t, toml)

	// Four jobs show the spread (the 2nd goes to the other Engine, the
	// 4th to the one with fewer); eight at once are TestEightJobsAtOnce's.
	t.Run("four concurrent jobs", func(t *testing.T) {
		const jobs = 4
		results := make([]*runner.Result, jobs)
		ids := make([]int64, jobs)
		var wg sync.WaitGroup
		for i := range jobs {
			job := simpleJob("docker info --format 'inner daemon {{.ServerVersion}}'", "sleep 2")
			ids[i] = job.ID
			// A runner starts jobs as it gets them, not in the same
			// millisecond.
			time.Sleep(250 * time.Millisecond)
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				defer cancel()
				res, err := e.Run(ctx, job)
				if err != nil {
					t.Errorf("runner emulator, job %d: %v", job.ID, err)
					return
				}
				results[i] = res
			})
		}
		wg.Wait()
		placed := map[string]int{}
		for i, res := range results {
			if res == nil {
				continue
			}
			log := runner.PlainText(res.Log)
			if res.Outcome.Kind != runner.OutcomeSuccess || !strings.Contains(log, "inner daemon ") {
				t.Errorf("job %d: outcome %s; log:\n%s", ids[i], res.Outcome, log)
				continue
			}
			for line := range strings.Lines(log) {
				if strings.Contains(line, " placed on ") {
					t.Logf("job %d (started #%d): %s", ids[i], i, strings.TrimSpace(line))
				}
			}
			for _, h := range hosts {
				if strings.Contains(log, "placed on Docker Engine "+h.host+" (") {
					placed[h.host]++
				}
			}
		}
		// The jobs overlap (each outlasts the 2 s over which they start) and
		// the runner's placements are serialized: each goes to the Engine
		// with fewer sandboxes, so the two Engines end even.
		if placed[hosts[0].host] != jobs/2 || placed[hosts[1].host] != jobs/2 {
			t.Errorf("placements %v: want %d jobs on each Engine", placed, jobs/2)
		}
		t.Logf("placements: %v", placed)
		for _, h := range hosts {
			if left := objectsLabelled(t, h.api(t), executor.LabelSandbox, ""); len(left) > 0 {
				t.Errorf("left on %s: %v", h.host, left)
			}
		}
		created := 0
		for _, r := range auditJSON(t, writeConfig(t, toml)) {
			if r.Created != nil {
				created++
				if r.Created.Engine != hosts[0].host && r.Created.Engine != hosts[1].host {
					t.Errorf("sandbox %s recorded on Engine %q, want one of the two", r.Sandbox, r.Created.Engine)
				}
			}
		}
		if created != jobs {
			t.Errorf("%d sandbox.created records in %s, want %d", created, trail, jobs)
		}
		// The first prepare noted each Engine's memory for the others,
		// which then need not ask /info.
		notes, _ := filepath.Glob("/tmp/dind-executor-placement-*.memory")
		noted := false
		for _, path := range notes {
			data, err := os.ReadFile(path)
			noted = noted || (err == nil && strings.Contains(string(data), hosts[0].host) && strings.Contains(string(data), hosts[1].host))
		}
		if !noted {
			t.Errorf("no memory notes name both Engines among %v", notes)
		}
	})

	t.Run("pool, ps and drain cover every Engine", func(t *testing.T) {
		configPath := writeConfig(t, toml+"\n[pool]\nsize = 1\n")
		if res := operator(t, configPath, "pool", "fill"); res.exitCode != 0 || !strings.Contains(res.stdout, "started 2 pooled daemons (pool size 1 on each of 2 Engines)") {
			t.Fatalf("pool fill: exit %d\n%s%s", res.exitCode, res.stdout, res.stderr)
		}
		entries := psEntries(t, configPath)
		onEngine := map[string]int{}
		for _, entry := range entries {
			onEngine[entry["engine"].(string)]++
		}
		if len(entries) != 2 || onEngine[hosts[0].host] != 1 || onEngine[hosts[1].host] != 1 {
			t.Errorf("ps lists %d sandboxes by Engine %v, want one pooled daemon on each", len(entries), onEngine)
		}
		table := operator(t, configPath, "ps")
		if !strings.Contains(table.stdout, "ENGINE") || !strings.Contains(table.stdout, hosts[1].host) {
			t.Errorf("ps table has no ENGINE column naming %s:\n%s", hosts[1].host, table.stdout)
		}
		if res := operator(t, configPath, "pool", "drain"); res.exitCode != 0 {
			t.Fatalf("pool drain: exit %d\n%s%s", res.exitCode, res.stdout, res.stderr)
		}
		for _, h := range hosts {
			if left := objectsLabelled(t, h.api(t), executor.LabelSandbox, ""); len(left) > 0 {
				t.Errorf("left on %s after drain: %v", h.host, left)
			}
		}
	})

	t.Run("gc finds a killed prepare's sandbox on its Engine", func(t *testing.T) {
		configPath := writeConfig(t, toml)
		prepare, sandboxID, tmp := startPrepare(t, configPath, newJobID())
		daemon := executor.SandboxID(sandboxID).Name(executor.RoleDaemon)
		var on *privateEngine
		waitFor(t, "the daemon container on one of the Engines", time.Minute, func() bool {
			for _, h := range hosts {
				if _, err := h.api(t).ContainerInspect(context.Background(), daemon, client.ContainerInspectOptions{}); err == nil {
					on = h
				}
			}
			return on != nil
		})
		if err := syscall.Kill(-prepare.Process.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = prepare.Wait()
		if err := os.RemoveAll(tmp); err != nil {
			t.Fatal(err)
		}
		res := operator(t, configPath, "gc")
		if res.exitCode != 0 || !strings.Contains(res.stdout, sandboxID) || !strings.Contains(res.stdout, "removed") || !strings.Contains(res.stdout, on.host) {
			t.Errorf("gc: exit %d, want %s removed from %s:\n%s%s", res.exitCode, sandboxID, on.host, res.stdout, res.stderr)
		}
		if left := objectsLabelled(t, on.api(t), executor.LabelSandbox, sandboxID); len(left) > 0 {
			t.Errorf("left on %s after gc: %v", on.host, left)
		}
	})

	// One Engine's socket is gone (refused at once), another accepts and
	// never answers (a hung build host): the job runs on the third, and its
	// later hooks do not wait for the hung one.
	t.Run("Engines that do not answer are skipped", func(t *testing.T) {
		gone := "unix://" + t.TempDir() + "/gone.sock"
		hung := hungEngine(t)
		e := newEmulator(t, fmt.Sprintf("[engine]\nhosts = [%q, %q, %q]\n", gone, hung, hosts[0].host)+seedConfig())
		job := simpleJob("docker info --format 'inner daemon {{.ServerVersion}}'")
		res := runJob(t, e, job)
		log := runner.PlainText(res.Log)
		if res.Outcome.Kind != runner.OutcomeSuccess || !strings.Contains(log, "placed on Docker Engine "+hosts[0].host) ||
			!strings.Contains(log, gone+" skipped (") || !strings.Contains(log, hung+" skipped (") {
			t.Errorf("with two Engines not answering: outcome %s, want success on %s and both skipped; log:\n%s", res.Outcome, hosts[0].host, log)
		}
		for _, x := range res.Execs {
			if x.Kind != runner.ExecPrepare && x.Duration >= 10*time.Second {
				t.Errorf("%s %s took %s: it waited for the hung Engine", x.Kind, x.Stage, x.Duration)
			}
		}
		if left := objectsLabelled(t, hosts[0].api(t), executor.LabelSandbox, ""); len(left) > 0 {
			t.Errorf("left on %s: %v", hosts[0].host, left)
		}
	})
}

// hungEngine is a tcp:// endpoint that accepts connections and never
// answers, as a build host whose dockerd hangs.
func hungEngine(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "tcp://" + l.Addr().String()
}

// removeNewPlacementLocks removes, when the test ends, the placement lock
// files (executor/placementlock.go) that appeared in /tmp while it ran:
// the product leaves them (removing a flock file races with its next
// user), and only lists of several Engines make them, which no other
// test uses.
func removeNewPlacementLocks(t *testing.T) {
	t.Helper()
	const pattern = "/tmp/dind-executor-placement-*" // locks and memory notes
	before, _ := filepath.Glob(pattern)
	t.Cleanup(func() {
		after, _ := filepath.Glob(pattern)
		for _, f := range after {
			if !slices.Contains(before, f) {
				if err := os.Remove(f); err != nil {
					t.Errorf("remove placement file %s: %v", f, err)
				}
			}
		}
	})
}
