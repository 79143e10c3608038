package integration

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/config"
	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/executor/audit"
	"gitlab.com/dind-executor/dind-executor/integration/runner"
)

// poolObjects counts the containers of one pool: its daemons (taken or
// not) and its fill lock.
func poolObjects(t *testing.T, key string, role string) int {
	t.Helper()
	f := client.Filters{}.Add("label", executor.LabelPoolKey+"="+key)
	if role != "" {
		f = f.Add("label", executor.LabelRole+"="+role)
	}
	res, err := dockerAPI(t).ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	return len(res.Items)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// warmPool is the pool of the config toml, which e runs with: its key, and
// `dind-executor pool <args>`. When the test ends the pool is drained and
// nothing of it may be left.
func warmPool(t *testing.T, e *runner.Emulator, toml string) (key string, pool func(args ...string) string) {
	t.Helper()
	cfg, err := config.Parse([]byte(toml))
	if err != nil {
		t.Fatal(err)
	}
	key = executor.SettingsFromConfig(cfg).PoolKey()
	pool = func(args ...string) string {
		out, err := exec.Command(env.binary, append(e.Args, append([]string{"pool"}, args...)...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("pool %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		waitFor(t, "the background fill ends", time.Minute, func() bool { return poolObjects(t, key, "pool-fill-lock") == 0 })
		pool("drain")
		if n := poolObjects(t, key, ""); n != 0 {
			t.Errorf("%d containers of the pool are left after drain", n)
		}
	})
	return key, pool
}

// With a warm pool, prepare takes a daemon that is already up; the pool
// refills itself in the background, and each pooled daemon serves one job
// and goes with it.
func TestWarmPoolServesJobsAndRefills(t *testing.T) {
	t.Parallel()
	// A pids limit of its own gives this test its own pool.
	toml, _ := withAudit(t, seedConfig()+fmt.Sprintf("\n[limits]\npids = %d\n\n[pool]\nsize = 1\n", 4000+newJobID()%1000))
	e := newEmulator(t, toml)
	key, pool := warmPool(t, e, toml)

	if out := pool("fill"); !strings.Contains(out, "started 1 pooled daemons") {
		t.Fatalf("pool fill: %s", out)
	}
	for i := range 2 {
		waitFor(t, "a ready pooled daemon", time.Minute, func() bool {
			return poolObjects(t, key, string(executor.RoleDaemon)) >= 1 && poolObjects(t, key, "pool-fill-lock") == 0
		})
		job := simpleJob("docker info --format 'warm daemon {{.ServerVersion}}'")
		res := runJob(t, e, job)
		if res.Outcome.Kind != runner.OutcomeSuccess {
			t.Fatalf("job %d: outcome = %s", i, res.Outcome)
		}
		log := runner.PlainText(res.Log)
		for _, want := range []string{"Took a warm daemon from the pool", "runs on pooled daemon", "warm daemon "} {
			if !strings.Contains(log, want) {
				t.Errorf("job %d log lacks %q", i, want)
			}
		}
		created := recordOf(t, auditJSON(t, e.Args[1], "--job", strconv.FormatInt(job.ID, 10)), audit.EventSandboxCreated)
		if created.Created == nil || created.Created.PooledSandbox == "" || !strings.Contains(log, created.Created.PooledSandbox) {
			t.Errorf("job %d: the trail does not link the job to its pooled sandbox: %+v", i, created.Created)
		}
		prepare := res.ExecsOf(runner.ExecPrepare)[0]
		t.Logf("job %d: prepare with a warm daemon took %s", i, prepare.Duration)
		assertJobLeftNothing(t, job.ID)
	}
}
