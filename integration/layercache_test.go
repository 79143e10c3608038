package integration

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

const layerCacheConfig = "\n[cache]\nlayers = \"project\"\n"

// projectJobs returns seed jobs of one project whose volumes are removed
// when the test ends (a layer cache outlives its jobs by design).
func projectJobs(t *testing.T, n int) []runner.Job {
	project := newJobID()
	t.Cleanup(func() { removeVolumes(t, executor.LabelProjectID, strconv.FormatInt(project, 10)) })
	jobs := make([]runner.Job, n)
	for i := range jobs {
		jobs[i] = seedjob.Job(newJobID(), env.repoSHA)
		jobs[i].ProjectID = project
	}
	return jobs
}

// With the layer cache on, the project's next job builds the unchanged
// multi-stage image from cache; another project starts cold.
func TestLayerCacheKeepsLayersForTheProjectsNextJob(t *testing.T) {
	t.Parallel()
	jobs := projectJobs(t, 2)
	stranger := projectJobs(t, 1)[0]
	e := newEmulator(t, seedConfig()+layerCacheConfig)
	for _, step := range []struct {
		job       runner.Job
		wantCache bool
	}{{jobs[0], false}, {jobs[1], true}, {stranger, false}} {
		res := runJob(t, e, step.job)
		if res.Outcome.Kind != runner.OutcomeSuccess {
			t.Fatalf("job %d: outcome = %s, want success", step.job.ID, res.Outcome)
		}
		log := runner.PlainText(res.Log)
		if !strings.Contains(log, "Layer cache: the daemon's data root is the project's volume dind-layers-") {
			t.Errorf("job %d log does not name its layer volume", step.job.ID)
		}
		if found, cached := stepCached(log, seedRunStep); !found || cached != step.wantCache {
			t.Errorf("job %d: %q found %v, from the cache %v; want from the cache %v", step.job.ID, seedRunStep, found, cached, step.wantCache)
		}
		if !strings.Contains(res.RunnerLog, "layer cache: ") {
			t.Errorf("job %d: cleanup did not report the layer cache:\n%s", step.job.ID, res.RunnerLog)
		}
		assertJobLeftNothing(t, step.job.ID)
	}
}

// Two jobs of one project at once never share a data root: the second gets
// the project's second cache volume, and says so.
func TestLayerCacheConcurrentJobsGetTheirOwnVolumes(t *testing.T) {
	t.Parallel()
	jobs := projectJobs(t, 2)
	e := newEmulator(t, seedConfig()+layerCacheConfig)
	logs := make([]string, len(jobs))
	var wg sync.WaitGroup
	for i := range jobs {
		jobs[i].Script = []string{"sleep 4", "docker info --format 'root {{.DockerRootDir}}'"}
		wg.Go(func() {
			res := runJob(t, e, jobs[i])
			if res.Outcome.Kind != runner.OutcomeSuccess {
				t.Errorf("job %d: outcome = %s", jobs[i].ID, res.Outcome)
			}
			logs[i] = runner.PlainText(res.Log)
		})
	}
	wg.Wait()
	first, second := 0, 0
	for _, log := range logs {
		if strings.Contains(log, "data root is the project's volume dind-layers-") && strings.Contains(log, "-0\n") {
			first++
		}
		if strings.Contains(log, "another job of this project holds the first cache volume; this job uses dind-layers-") {
			second++
		}
	}
	if first != 1 || second != 1 {
		t.Errorf("%d jobs got the first volume and %d the second, want one each:\n%s", first, second, strings.Join(logs, "\n----\n"))
	}
	for _, j := range jobs {
		assertJobLeftNothing(t, j.ID)
	}
}

// The cap is enforced at teardown: a job that leaves more than max_size of
// images behind has the oldest pruned, and the next job does not see them.
func TestLayerCacheCapPrunesAtTeardown(t *testing.T) {
	t.Parallel()
	jobs := projectJobs(t, 2)
	big := jobs[0]
	big.Script = []string{
		"cp /bin/busybox . && printf 'FROM scratch\\nCOPY busybox /bin/busybox\\nRUN [\"/bin/busybox\", \"dd\", \"if=/dev/urandom\", \"of=/blob\", \"bs=1M\", \"count=96\"]\\n' > Dockerfile.big",
		"docker build -q -f Dockerfile.big -t big-layer:1 .",
	}
	next := jobs[1]
	next.Script = []string{"docker image ls --format 'image {{.Repository}}'"}
	e := newEmulator(t, seedConfig()+layerCacheConfig+"max_size = \"64m\"\n")
	res := runJob(t, e, big)
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	if strings.Contains(res.RunnerLog, " 0 images pruned") || !strings.Contains(res.RunnerLog, "images pruned (cap 64 MiB)") {
		t.Errorf("teardown did not prune to the cap:\n%s", res.RunnerLog)
	}
	res = runJob(t, e, next)
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	if strings.Contains(runner.PlainText(res.Log), "image big-layer") {
		t.Error("the image over the cap survived teardown")
	}
	assertJobLeftNothing(t, big.ID)
	assertJobLeftNothing(t, next.ID)
}

// gc --caches removes a project's cache volumes (runner cache and layer
// cache) once no job has used them for the given time, and keeps them
// before that.
func TestGCRemovesIdleCacheVolumes(t *testing.T) {
	t.Parallel()
	job := projectJobs(t, 1)[0]
	job.Script = []string{"mkdir -p cachedir && echo x > cachedir/f", "docker info --format 'root {{.DockerRootDir}}'"}
	job.Cache = []runner.Cache{{Key: "deps", Paths: []string{"cachedir/"}}}
	e := newEmulator(t, seedConfig()+layerCacheConfig)
	if res := runJob(t, e, job); res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s", res.Outcome)
	}
	project := strconv.FormatInt(job.ProjectID, 10)
	gc := func(args ...string) string {
		res := operator(t, e.Args[1], append([]string{"gc", "--project", project}, args...)...)
		if res.exitCode != 0 {
			t.Fatalf("gc %v: exit %d: %s", args, res.exitCode, res.stderr)
		}
		return res.stdout
	}
	if out := gc("--caches", "1h"); strings.Contains(out, "removed\t") || !strings.Contains(out, "gc: 2 cache volumes considered, 0 removed") {
		t.Errorf("gc --caches 1h touched volumes used seconds ago:\n%s", out)
	}
	time.Sleep(2 * time.Second)
	if out := gc("--caches", "1s", "--dry-run"); !strings.Contains(out, "would remove") || !strings.Contains(out, "0 removed") {
		t.Errorf("gc --dry-run:\n%s", out)
	}
	out := gc("--caches", "1s")
	for _, want := range []string{"dind-layers-", "dind-cache-", "gc: 2 cache volumes considered, 2 removed"} {
		if !strings.Contains(out, want) {
			t.Errorf("gc --caches 1s output lacks %q:\n%s", want, out)
		}
	}
	assertNothingLeft(t, executor.LabelProjectID, project)
}

// A kept layer cache holds layers, not the job's state: a volume the job
// made, a container or plugin directory it planted in the data root (which
// dockerd would only read at the next job's start) and files beside them
// are gone before the project's next job opens it; its images stay. Bytes
// planted among the layers, which the daemon's own disk usage does not
// count, are measured on disk: over the cap, the volume is discarded.
func TestLayerCacheKeepsOnlyLayers(t *testing.T) {
	t.Parallel()
	plant := func(cmd string) string {
		return "docker run --rm --privileged -v /var/lib/docker:/dr plant:1 /bin/busybox sh -c '" + cmd + "'"
	}
	t.Run("the job's state is removed", func(t *testing.T) {
		t.Parallel()
		jobs := projectJobs(t, 2)
		planter := jobs[0]
		planter.Script = []string{
			busyboxImage("plant:1"),
			"docker volume create leftover && docker run --rm -v leftover:/v plant:1 /bin/busybox sh -c 'echo secret > /v/f'",
			plant("/bin/busybox mkdir -p /dr/containers/planted-by-job-1 /dr/plugins/planted-plugin && echo x > /dr/planted-at-root"),
		}
		next := jobs[1]
		next.Script = []string{
			"docker volume ls --format 'volume {{.Name}}'",
			"docker image ls --format 'image {{.Repository}}'",
			plant("/bin/busybox ls -a /dr /dr/containers /dr/plugins 2>&1 || true"),
		}
		e := newEmulator(t, seedConfig()+layerCacheConfig)
		since := time.Now().Add(-time.Second)
		res := runJob(t, e, planter)
		if res.Outcome.Kind != runner.OutcomeSuccess {
			t.Fatalf("planter: outcome = %s", res.Outcome)
		}
		if left := volumesLeftByScrub(t, since); len(left) > 0 {
			t.Errorf("the layer scrub left volumes behind: %v", left)
		}
		if !strings.Contains(res.RunnerLog, "MiB on disk") {
			t.Errorf("cleanup does not say what the kept volume holds on disk:\n%s", res.RunnerLog)
		}
		res = runJob(t, e, next)
		if res.Outcome.Kind != runner.OutcomeSuccess {
			t.Fatalf("next: outcome = %s", res.Outcome)
		}
		log := runner.PlainText(res.Log)
		if !strings.Contains(log, "image plant") {
			t.Error("the layer cache did not keep the planter's image")
		}
		for _, leak := range []string{"volume leftover", "planted-by-job-1", "planted-plugin", "planted-at-root"} {
			if strings.Contains(log, leak) {
				t.Errorf("the next job's daemon has %q from the job before", leak)
			}
		}
		assertJobLeftNothing(t, planter.ID)
		assertJobLeftNothing(t, next.ID)
	})
	t.Run("bytes hidden among the layers count against the cap", func(t *testing.T) {
		t.Parallel()
		job := projectJobs(t, 1)[0]
		job.Script = []string{
			busyboxImage("plant:1"),
			plant("/bin/busybox dd if=/dev/zero of=/dr/overlay2/hidden bs=1M count=96 2>/dev/null"),
		}
		res := runJob(t, newEmulator(t, seedConfig()+layerCacheConfig+"max_size = \"64m\"\n"), job)
		if res.Outcome.Kind != runner.OutcomeSuccess {
			t.Fatalf("outcome = %s", res.Outcome)
		}
		if !strings.Contains(res.RunnerLog, "discarded") || !strings.Contains(res.RunnerLog, "over its cap of 64 MiB") {
			t.Errorf("cleanup kept a volume holding more than its cap on disk:\n%s", res.RunnerLog)
		}
		assertJobLeftNothing(t, job.ID)
	})
}

// volumesLeftByScrub lists the volumes a layer-scrub container mounted
// since then that still exist, besides the layer cache volumes it scrubs
// (anonymous ones carry no label for assertJobLeftNothing to find). It
// fails the test when no scrub container ran.
func volumesLeftByScrub(t *testing.T, since time.Time) []string {
	t.Helper()
	api := dockerAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := api.Events(ctx, client.EventsListOptions{
		Since: strconv.FormatInt(since.Unix(), 10), Until: strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10),
		Filters: client.Filters{}.Add("type", "container", "volume"),
	})
	scrubs := map[string]bool{}
	var mounted []string
	for done := false; !done; {
		select {
		case m := <-res.Messages:
			switch {
			case m.Type == "container" && m.Action == "create" && strings.HasSuffix(m.Actor.Attributes["name"], "-"+string(executor.RoleLayerScrub)):
				scrubs[m.Actor.ID] = true
			case m.Type == "volume" && m.Action == "mount" && scrubs[m.Actor.Attributes["container"]]:
				mounted = append(mounted, m.Actor.ID)
			}
		case err := <-res.Err:
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("engine events: %v", err)
			}
			done = true
		}
	}
	if len(scrubs) == 0 {
		t.Fatal("no layer-scrub container ran")
	}
	var left []string
	for _, v := range mounted {
		if strings.HasPrefix(v, "dind-layers-") {
			continue
		}
		if _, err := api.VolumeInspect(ctx, v, client.VolumeInspectOptions{}); err == nil {
			left = append(left, v)
			api.VolumeRemove(ctx, v, client.VolumeRemoveOptions{Force: true})
		}
	}
	return left
}
