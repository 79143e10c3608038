package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/integration/runner"
)

// layerVolumeLine is the job log's line naming the layer cache volume.
var layerVolumeLine = regexp.MustCompile(`Layer cache: (?:the daemon's data root is the project's volume|this job uses) (dind-layers-\S+)`)

// A layer cache volume goes to the project's next job only when its last
// job's cleanup stamped it clean (scrubbed, in the marker the executor
// keeps beside it). One whose cleanup never finished (here the stamp is
// taken off, as a cleanup killed half way leaves it) is removed at the
// next claim, and that job starts empty; one that cannot be removed either
// (a file made immutable, which the scrub and the Engine both fail on: a
// job's privileged container can chattr its daemon's data root) is
// skipped, and the job takes the next slot, saying so.
func TestLayerCacheHandsOnOnlyACleanVolume(t *testing.T) {
	t.Parallel()
	api := dockerAPI(t)
	ctx := context.Background()
	jobs := projectJobs(t, 4)
	e := newEmulator(t, seedConfig()+layerCacheConfig)
	run := func(job runner.Job) (log, volume string) {
		t.Helper()
		res := runJob(t, e, job)
		log = runner.PlainText(res.Log)
		if res.Outcome.Kind != runner.OutcomeSuccess {
			t.Fatalf("job %d: outcome = %s\n%s", job.ID, res.Outcome, log)
		}
		assertJobLeftNothing(t, job.ID)
		m := layerVolumeLine.FindStringSubmatch(log)
		if m == nil {
			t.Fatalf("job %d: the log names no layer cache volume:\n%s", job.ID, log)
		}
		return log, m[1]
	}
	cached := func(log string) bool {
		t.Helper()
		found, cached := stepCached(log, seedRunStep)
		if !found {
			t.Fatalf("no %q step in the log", seedRunStep)
		}
		return cached
	}
	unstamp := func(volume string) {
		t.Helper()
		// RemoveVolumes: the marker's image declares a VOLUME.
		if _, err := api.ContainerRemove(ctx, volume+"-last-use", client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			t.Fatalf("take the clean stamp off %s: %v", volume, err)
		}
	}

	_, first := run(jobs[0])
	log, again := run(jobs[1])
	if again != first || !cached(log) {
		t.Fatalf("the project's second job got %s (cached %v), want %s from the cache", again, cached(log), first)
	}

	unstamp(first)
	log, again = run(jobs[2])
	if again != first || cached(log) || !strings.Contains(log, first+" was not left clean by its last job") {
		t.Errorf("after an unfinished cleanup the next job got %s, cached %v, want %s emptied and said so:\n%s", again, cached(log), first, log)
	}

	// A file the volume's owner cannot remove: the next claim cannot
	// remove the volume either.
	vol, err := api.VolumeInspect(ctx, first, client.VolumeInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stuck := filepath.Join(vol.Volume.Mountpoint, "immutable")
	if err := os.WriteFile(stuck, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	chattr := func(flag string) error { return exec.Command("chattr", flag, stuck).Run() }
	if err := chattr("+i"); err != nil {
		t.Fatalf("chattr +i %s (e2fsprogs, on the Engine's file system): %v", stuck, err)
	}
	t.Cleanup(func() { // before projectJobs removes the volumes
		if err := chattr("-i"); err != nil {
			t.Errorf("chattr -i %s: %v", stuck, err)
		}
	})
	unstamp(first)
	log, other := run(jobs[3])
	if other == first || cached(log) {
		t.Errorf("the next job got %s, cached %v, want another slot than the stuck %s, empty", other, cached(log), first)
	}
	if !strings.Contains(log, "skipped: "+first+" was not left clean by its last job and cannot be removed") {
		t.Errorf("the job log does not say why %s was skipped:\n%s", first, log)
	}
}
