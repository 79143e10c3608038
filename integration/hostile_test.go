package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/executor/audit"
	"gitlab.com/dind-executor/dind-executor/executor/tlsca"
	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
	"gitlab.com/dind-executor/dind-executor/stages"
)

// These tests play the hostile job: whatever it leaves in the files,
// volumes, containers and daemon it controls, the hooks end within their
// bound with flat memory, leave nothing, keep the operator's facts, and the
// project's next job runs normally.

// hookRSSLimitKB is the peak resident memory every hook must stay under.
const hookRSSLimitKB = 100 << 10

// hookBound is far above what a hook takes here; only a hang reaches it.
const hookBound = 2 * time.Minute

// assertHooksBounded checks every hook of a run for a hang or a bloat.
func assertHooksBounded(t *testing.T, res *runner.Result) {
	t.Helper()
	for _, x := range res.Execs {
		if x.MaxRSSKB > hookRSSLimitKB {
			t.Errorf("%s %s: peak RSS %d KiB, over %d KiB", x.Kind, x.Stage, x.MaxRSSKB, hookRSSLimitKB)
		}
		if x.Duration > hookBound {
			t.Errorf("%s %s took %s: past the %s bound", x.Kind, x.Stage, x.Duration, hookBound)
		}
	}
}

// busyboxImage is a job step that builds a FROM scratch image (tag) on the
// job's own daemon: no registry needed.
func busyboxImage(tag string) string {
	return "mkdir -p bb && cp /bin/busybox bb/ && printf 'FROM scratch\\nCOPY busybox /bin/busybox\\n' > bb/Dockerfile && docker build -q -t " + tag + " bb"
}

// A job that plants special files where the executor once kept its
// bookkeeping (the cache volume's root) and floods its certificate
// directory with huge sparse files, FIFOs and links: cleanup still reads
// back what the daemon holds or says why not, within its bound, in flat
// memory, and the project's next job runs normally.
func TestHostileFilesCannotHangOrBloatTheHooks(t *testing.T) {
	t.Parallel()
	jobs := projectJobs(t, 2)
	hostile := jobs[0]
	hostile.Script = []string{
		"mkfifo /cache/.dind-executor-last-used",
		"ln -s /dev/zero /certs/client/zero && mkfifo /certs/client/fifo",
		"for i in $(seq 1 300); do truncate -s 50G /certs/client/junk$i; done",
		"rm /certs/client/key.pem && mkfifo /certs/client/key.pem",
		"echo planted",
	}
	toml, trail := withAudit(t, seedConfig())
	e := newEmulator(t, toml)
	res := runJob(t, e, hostile)
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	assertHooksBounded(t, res)
	assertJobLeftNothing(t, hostile.ID)

	records := readTrail(t, trail, hostile.ID)
	produced := recordOf(t, records, audit.EventSandboxProduced)
	if produced.Error == "" || !strings.Contains(produced.Error, "/certs/client") {
		t.Errorf("the produced record does not say why the daemon could not be asked: %q", produced.Error)
	}
	recordOf(t, records, audit.EventSandboxDestroyed)

	next := jobs[1]
	next.Script = []string{"ls -la /cache", "docker info --format 'daemon {{.ServerVersion}}'"}
	res = runJob(t, e, next)
	if res.Outcome.Kind != runner.OutcomeSuccess || !strings.Contains(res.Log, "daemon ") {
		t.Fatalf("the project's next job: outcome %s", res.Outcome)
	}
	assertHooksBounded(t, res)
	assertJobLeftNothing(t, next.ID)
}

// readTrail reads one job's records from a test's own audit trail.
func readTrail(t *testing.T, path string, jobID int64) []audit.Record {
	t.Helper()
	res, err := audit.ReadFile(context.Background(), path, audit.Query{JobID: jobID})
	if err != nil {
		t.Fatal(err)
	}
	return res.Records
}

// A job that swaps its certificate directory's CA for one of its own
// cannot change what the trail says of its sandbox: the CA is the
// executor's, from memory, and cleanup reads the daemon back against the
// CA pinned when the daemon was made, never the job's file.
func TestJobCannotForgeItsSandboxCA(t *testing.T) {
	t.Parallel()
	fake, err := tlsca.New("fake", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	job := simpleJob(
		busyboxImage("made-by-job:1"),
		`cp "$FAKE_CA" /certs/client/ca.pem`,
	)
	job.Variables = append(job.Variables, runner.Variable{Key: "FAKE_CA", Value: string(fake.CACert), File: true})
	toml, trail := withAudit(t, seedConfig())
	res := runJob(t, newEmulator(t, toml), job)
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	records := readTrail(t, trail, job.ID)
	created := recordOf(t, records, audit.EventSandboxCreated)
	if created.Created.CA.Fingerprint == "" || created.Created.CA.Fingerprint == fake.Fingerprint() {
		t.Errorf("created record's CA %q is not the executor's", created.Created.CA.Fingerprint)
	}
	produced := recordOf(t, records, audit.EventSandboxProduced)
	if produced.Error != "" {
		t.Fatalf("reading the daemon back failed: %s", produced.Error)
	}
	found := false
	for _, img := range produced.Produced.Images {
		found = found || strings.Contains(strings.Join(img.Tags, ","), "made-by-job:1")
	}
	if !found {
		t.Errorf("the image the job built is not in the trail: %+v", produced.Produced.Images)
	}
	assertJobLeftNothing(t, job.ID)
}

// With the layer cache on, nothing of a job keeps running in the data root
// the project's next job gets (a --restart=always container included), and
// a job of a protected ref never starts from a data root or a runner cache
// an unprotected job wrote, even one that sets CI_COMMIT_REF_PROTECTED
// itself.
func TestLayerCacheKeepsNoSurvivorAndSplitsByProtection(t *testing.T) {
	t.Parallel()
	jobs := projectJobs(t, 3)
	unprotected := runner.Var("CI_COMMIT_REF_PROTECTED", "false")
	claimsProtected := runner.Var("CI_COMMIT_REF_PROTECTED", "true")

	poisoner := jobs[0]
	poisoner.Variables = append(poisoner.Variables, unprotected, claimsProtected)
	poisoner.Script = []string{
		busyboxImage("poison:1"),
		"docker run -d --restart=always --name survivor poison:1 /bin/busybox sleep 1000",
		"echo poison > /cache/poison",
	}
	sameTrust := jobs[1]
	sameTrust.Variables = append(sameTrust.Variables, unprotected)
	sameTrust.Script = []string{"docker ps -a --format 'container {{.Names}}'", "docker image ls --format 'image {{.Repository}}'"}
	protected := jobs[2]
	protected.Variables = append(protected.Variables, claimsProtected)
	protected.Script = []string{"docker ps -a --format 'container {{.Names}}'", "docker image ls --format 'image {{.Repository}}'", "ls /cache"}

	e := newEmulator(t, seedConfig()+layerCacheConfig)
	logs := map[string]string{}
	for _, step := range []struct {
		name string
		job  runner.Job
	}{{"poisoner", poisoner}, {"same trust", sameTrust}, {"protected", protected}} {
		res := runJob(t, e, step.job)
		if res.Outcome.Kind != runner.OutcomeSuccess {
			t.Fatalf("%s: outcome = %s", step.name, res.Outcome)
		}
		logs[step.name] = runner.PlainText(res.Log)
		assertJobLeftNothing(t, step.job.ID)
	}
	if strings.Contains(logs["same trust"], "container survivor") {
		t.Error("a container of the previous job survived into the next job's daemon")
	}
	if !strings.Contains(logs["same trust"], "image poison") {
		t.Error("the layer cache kept nothing for the next job of the same trust")
	}
	for _, leak := range []string{"container survivor", "image poison", "\npoison\n"} {
		if strings.Contains(logs["protected"], leak) {
			t.Errorf("the protected job saw %q from the unprotected one", strings.TrimSpace(leak))
		}
	}
	if !strings.Contains(logs["protected"], "-protected") {
		t.Error("the protected job's log does not name its own (-protected) cache volumes")
	}
}

// A job cannot pull one of the executor's own images for another platform
// (which would change what other jobs' helpers, daemons or default builds
// run): prepare refuses it and says how to fix the job.
func TestJobCannotRepullAnOperatorImageForAnotherPlatform(t *testing.T) {
	t.Parallel()
	job := simpleJob("echo never")
	job.Image = runner.Image{Name: seedjob.HelperImage, Platform: "linux/arm64"}
	e := newEmulator(t, seedConfig())
	e.PrepareAttempts = 1
	res := runJob(t, e, job)
	if res.Outcome.Kind != runner.OutcomeSystemFailure {
		t.Fatalf("outcome = %s, want system failure", res.Outcome)
	}
	if !strings.Contains(res.Log, "also the executor's helper_image") || !strings.Contains(res.Log, "drop docker: platform:") {
		t.Errorf("the job log does not say why and how to fix it:\n%s", runner.PlainText(res.Log))
	}
	assertJobLeftNothing(t, job.ID)
}

// When the runner process dies without cleanup (SIGKILL, the OOM killer),
// plain gc removes its sandbox at once, though the runner's temp dir is
// still there; ps shows a job name full of terminal escapes harmlessly.
func TestSandboxOfAKilledRunnerIsCollectedAtOnce(t *testing.T) {
	t.Parallel()
	toml, _ := withAudit(t, seedConfig())
	configPath := writeConfig(t, toml)
	jobID := newJobID()
	tmp, err := os.MkdirTemp("", "custom-executor")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	response := `{"id":` + strconv.FormatInt(jobID, 10) + `,"job_info":{"name":"evil\u001b[2J\u001b[31mname","project_id":4243,"project_full_path":"ops/killed","pipeline_id":78},"runner_info":{"timeout":3600}}`
	// The project's cache volume outlives the sandbox by design; it goes
	// when the test ends, after the sandbox (cleanups run last first).
	t.Cleanup(func() { removeVolumes(t, executor.LabelProjectPath, "ops/killed") })
	path := filepath.Join(tmp, "response.json")
	if err := os.WriteFile(path, []byte(response), 0o600); err != nil {
		t.Fatal(err)
	}
	// A stand-in runner: a shell that runs prepare as its child, then
	// waits for the next hook that never comes.
	fakeRunner := exec.Command("sh", "-c", `"$@" > prepare.log 2>&1; echo $? > prepared; sleep 600`, "runner", env.binary, "--config", configPath, "prepare")
	fakeRunner.Dir = tmp
	fakeRunner.Env = append(os.Environ(), runnerEnv(tmp, true)...)
	fakeRunner.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := fakeRunner.Start(); err != nil {
		t.Fatal(err)
	}
	hostname, _ := os.Hostname()
	sandboxID := string(stages.SandboxID(hostname, path))
	t.Cleanup(func() {
		_ = syscall.Kill(-fakeRunner.Process.Pid, syscall.SIGKILL)
		_ = fakeRunner.Wait()
		assertNothingLeft(t, executor.LabelSandbox, sandboxID)
	})
	waitFor(t, "prepare to finish", 2*time.Minute, func() bool {
		_, err := os.Stat(filepath.Join(tmp, "prepared"))
		return err == nil
	})
	if code, _ := os.ReadFile(filepath.Join(tmp, "prepared")); strings.TrimSpace(string(code)) != "0" {
		out, _ := os.ReadFile(filepath.Join(tmp, "prepare.log"))
		t.Fatalf("prepare exited %s:\n%s", code, out)
	}

	ps := operator(t, configPath, "ps")
	if strings.ContainsRune(ps.stdout, 0x1b) || !strings.Contains(ps.stdout, `evil\x1b[2J\x1b[31mname`) {
		t.Errorf("ps printed the job's terminal escapes raw:\n%q", ps.stdout)
	}
	if out := operator(t, configPath, "gc", "--sandbox", sandboxID).stdout; !strings.Contains(out, "keep ") {
		t.Fatalf("gc did not keep the sandbox of a live runner:\n%s", out)
	}

	if err := syscall.Kill(-fakeRunner.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = fakeRunner.Wait()
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("the runner's temp dir should still be there: %v", err)
	}
	out := operator(t, configPath, "gc", "--sandbox", sandboxID)
	if out.exitCode != 0 || !strings.Contains(out.stdout, "removed ") || !strings.Contains(out.stdout, "runner process") {
		t.Fatalf("gc after the runner died: exit %d\n%s%s", out.exitCode, out.stdout, out.stderr)
	}
	assertNothingLeft(t, executor.LabelSandbox, sandboxID)
}

// The Engine copies an image's labels onto the containers made from it, so
// a job's image could carry any of the executor's labels the executor does
// not set itself on a build or service container: name another sandbox as
// the pooled one this job took (its cleanup would remove that sandbox,
// here a volume standing for it), or pass a service or a pinned daemon for
// a warm pooled daemon the next job of any project claims. An image that
// carries one is refused at prepare, saying which and what to do.
func TestImageLabelsCannotPassForTheExecutors(t *testing.T) {
	t.Parallel()
	api := dockerAPI(t)
	ctx := context.Background()
	victim := executor.SandboxID(fmt.Sprintf("%016x", rand.Uint64()))
	volume := victim.Name(executor.RoleBuilds)
	if _, err := api.VolumeCreate(ctx, client.VolumeCreateOptions{Name: volume, Labels: map[string]string{
		executor.LabelManaged: "true", executor.LabelSandbox: string(victim), executor.LabelRole: string(executor.RoleBuilds),
	}}); err != nil {
		t.Fatalf("create the other sandbox's volume: %v", err)
	}
	t.Cleanup(func() { api.VolumeRemove(context.Background(), volume, client.VolumeRemoveOptions{Force: true}) })

	cases := []struct {
		name  string
		label string // the LABEL line's key=value
		use   func(job *runner.Job, image string)
	}{
		// Once made cleanup remove the named sandbox as the pool's claim.
		{"build image naming another sandbox as its pooled one", executor.LabelPooled + "=" + string(victim),
			func(job *runner.Job, image string) { job.Image = runner.Image{Name: image} }},
		// Would list the service (or a pinned daemon) as a warm pooled
		// daemon for the next job to claim.
		{"service image posing as a pooled daemon", executor.LabelPoolKey + "=0123456789abcdef " + executor.LabelRole + "=daemon",
			func(job *runner.Job, image string) { job.Services = []runner.Image{{Name: image}} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			image := buildImage(t, "FROM "+seedjob.JobImage+"\nLABEL "+tc.label+"\n")
			job := simpleJob(`echo "labelled image $(echo ran)"`) // the marker is not in the echoed command
			tc.use(&job, image)
			e := newEmulator(t, seedConfig())
			e.PrepareAttempts = 1
			res := runJob(t, e, job)
			key, _, _ := strings.Cut(tc.label, "=") // named in the error, with any other of ours
			if res.Outcome.Kind == runner.OutcomeSuccess || strings.Contains(res.Log, "labelled image ran") {
				t.Fatalf("outcome = %s: a job image carrying %s ran", res.Outcome, key)
			}
			for _, want := range []string{"carries the label ", key, "remove that LABEL"} {
				if !strings.Contains(res.Log, want) {
					t.Errorf("the job log does not say %q:\n%s", want, runner.PlainText(res.Log))
				}
			}
			assertHooksBounded(t, res)
			assertJobLeftNothing(t, job.ID)
			if _, err := api.VolumeInspect(ctx, volume, client.VolumeInspectOptions{}); err != nil {
				t.Errorf("the job's cleanup removed %s, a volume of another sandbox its image's label named: %v", volume, err)
			}
		})
	}
}

// A job that stops its own daemon (SIGSTOP: it accepts connections and
// never answers) as it ends costs its layer cache, not the cleanup: the
// hook ends within its bound, the volume is discarded rather than handed
// on uncleaned, and nothing of the sandbox is left.
func TestLayerCacheOfAStoppedDaemonIsDiscardedInBoundedTime(t *testing.T) {
	t.Parallel()
	jobs := projectJobs(t, 1)
	job := jobs[0]
	job.Script = []string{
		busyboxImage("freezer:1"),
		"docker run -d --privileged --pid=host freezer:1 /bin/busybox sh -c '/bin/busybox sleep 1; /bin/busybox kill -STOP $(/bin/busybox pidof dockerd)'",
		"sleep 4",
		`if timeout 5 docker version >/dev/null 2>&1; then echo daemon still answers; else echo "daemon $(echo frozen)"; fi`, // the marker is not in the echoed command
	}
	res := runJob(t, newEmulator(t, seedConfig()+layerCacheConfig), job)
	if res.Outcome.Kind != runner.OutcomeSuccess || !strings.Contains(res.Log, "daemon frozen") {
		t.Fatalf("outcome = %s, want success with the daemon frozen", res.Outcome)
	}
	assertHooksBounded(t, res)
	assertJobLeftNothing(t, job.ID)
	var cleanup string
	for _, x := range res.Execs {
		if x.Kind == runner.ExecCleanup {
			cleanup += x.Output
			t.Logf("cleanup took %s", x.Duration.Round(time.Millisecond))
		}
	}
	if !strings.Contains(cleanup, "discarded") {
		t.Errorf("cleanup does not say the frozen daemon's layer cache was discarded:\n%s", cleanup)
	}
}

// A service (its image is the job's) that floods its output cannot fill
// the Engine host's disk: each sandbox container logs through Docker's
// local driver within [limits] log_size, however much it writes.
func TestServiceOutputIsBoundedOnTheEngineHost(t *testing.T) {
	t.Parallel()
	const capBytes = 2 << 20
	api := dockerAPI(t)
	ctx := context.Background()
	info, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	job := simpleJob("sleep 12")
	job.Services = append(job.Services, runner.Image{Name: seedjob.JobImage, Alias: "flood",
		Entrypoint: []string{"sh", "-c"},
		Command:    []string{"yes 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef | head -c 40000000; sleep 600"}})
	jobCtx, stop := context.WithCancel(ctx)
	largest := make(chan int64, 1)
	go func() { largest <- watchServiceLog(jobCtx, api, info.Info.DockerRootDir, job.ID) }()
	res := runJob(t, newEmulator(t, seedConfig()+"\n[limits]\nlog_size = \"2m\"\n"), job)
	stop()
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	assertJobLeftNothing(t, job.ID)
	got := <-largest
	// The local driver rotates at half the bound and compresses the older
	// file in the background: while it does, the uncompressed file, the
	// partial archive and the new file are all there. Twice the bound
	// still tells a bounded log from the flood's 40 MB (81 MB unbounded).
	if got > 2*capBytes {
		t.Errorf("the service's log took %d KiB on the Engine host, over twice log_size's %d KiB", got>>10, capBytes>>10)
	}
	if got < capBytes/4 {
		t.Errorf("the service's log never grew past %d KiB: the flood did not reach it, so the bound is not shown", got>>10)
	}
	t.Logf("40 MB written, the service's log peaked at %d KiB on the Engine host", got>>10)
}

// watchServiceLog polls the job's service container's log files under the
// Engine's data root until ctx ends, and returns the largest total seen.
func watchServiceLog(ctx context.Context, api *client.Client, root string, jobID int64) int64 {
	f := client.Filters{}.Add("label", executor.LabelJobID+"="+strconv.FormatInt(jobID, 10)).Add("label", executor.LabelRole+"="+string(executor.RoleService))
	var largest int64
	for ctx.Err() == nil {
		list, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err == nil {
			for _, c := range list.Items {
				var total int64
				_ = filepath.WalkDir(filepath.Join(root, "containers", c.ID), func(_ string, d os.DirEntry, err error) error {
					if err == nil && d.Type().IsRegular() && strings.Contains(d.Name(), ".log") {
						if fi, err := d.Info(); err == nil {
							total += fi.Size()
						}
					}
					return nil
				})
				largest = max(largest, total)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return largest
}

// A job that ends its build container's main process (any process of the
// job's user may signal it) fails as a build failure with its script's
// code, not as a system failure blaming the Engine, which the runner and
// GitLab would retry and count against the host.
func TestJobThatStopsItsOwnContainerIsABuildFailure(t *testing.T) {
	t.Parallel()
	job := simpleJob("kill -TERM 1; sleep 60")
	res := runJob(t, newEmulator(t, seedConfig()), job)
	if res.Outcome.Kind != runner.OutcomeBuildFailure {
		t.Errorf("outcome = %s, want build failure", res.Outcome)
	}
	if log := runner.PlainText(res.Log); strings.Contains(log, "Engine was restarted") || strings.Contains(log, "sandbox is lost") {
		t.Errorf("the job log blames the Engine:\n%s", log)
	}
	assertJobLeftNothing(t, job.ID)
}

// The kept layer cache holds the managed containerd's metadata; a
// container a job creates there directly (through containerd's socket,
// from a privileged container of its daemon), labelled for containerd's
// restart monitor, never runs in the project's next daemon.
func TestLayerCacheStartsNoContainerdContainerAJobPlanted(t *testing.T) {
	t.Parallel()
	jobs := projectJobs(t, 2)
	// An image with ctr (dynamic: it brings its libc) and busybox, and a
	// ctr talking to the daemon container's containerd.
	image := "mkdir -p c/bin c/tmp c/lib/x86_64-linux-gnu c/lib64 && cp /usr/bin/ctr /bin/busybox c/bin/ && " +
		"cp /lib/x86_64-linux-gnu/libc.so.6 c/lib/x86_64-linux-gnu/ && cp /lib64/ld-linux-x86-64.so.2 c/lib64/ && " +
		"printf 'FROM scratch\\nCOPY . /\\n' > c/Dockerfile && docker build -q -t ctr:1 c"
	ctr := "docker run --rm -i --privileged -v /var/run/docker/containerd:/ctd -v /var/lib/docker/containerd:/var/lib/docker/containerd ctr:1 /bin/ctr -a /ctd/containerd.sock -n planted "
	planter, next := jobs[0], jobs[1]
	planter.Script = []string{
		image,
		"docker save ctr:1 | " + ctr + "image import -",
		ctr + "run -d --null-io --label containerd.io/restart.status=running docker.io/library/ctr:1 survivor /bin/busybox sleep 3600",
		ctr + "task ls",
	}
	// containerd's restart monitor looks every 10 s.
	next.Script = []string{"sleep 12", ctr + "task ls"}

	e := newEmulator(t, seedConfig()+layerCacheConfig)
	logs := make([]string, len(jobs))
	for i, job := range []runner.Job{planter, next} {
		res := runJob(t, e, job)
		logs[i] = runner.PlainText(res.Log)
		if res.Outcome.Kind != runner.OutcomeSuccess {
			t.Fatalf("job %d: outcome = %s\n%s", i, res.Outcome, logs[i])
		}
		assertJobLeftNothing(t, job.ID)
	}
	running := regexp.MustCompile(`(?m)^survivor\s+\d+\s+RUNNING`)
	if !running.MatchString(logs[0]) {
		t.Fatalf("the planter's container did not run in its own daemon:\n%s", logs[0])
	}
	if running.MatchString(logs[1]) {
		t.Errorf("the planted container runs in the project's next daemon:\n%s", logs[1])
	}
}
