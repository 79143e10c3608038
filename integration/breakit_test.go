package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/executor/audit"
	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
	"gitlab.com/dind-executor/dind-executor/stages"
)

// The outer Engine restarts while a stage runs (here a private dockerd of
// this test's own: the shared one must never be restarted). Restarting
// stops every container, so the job fails as a system failure whose message
// says so; cleanup on the restarted Engine and then gc leave nothing.
func TestOuterEngineRestartDuringAJob(t *testing.T) {
	t.Parallel()
	private := startPrivateEngine(t)
	private.loadImages(t, seedjob.DaemonImage, seedjob.JobImage, seedjob.HelperImage)
	toml, _ := withAudit(t, seedConfig()+fmt.Sprintf("\n[engine]\nhost = %q\n", private.host))
	e := newEmulator(t, toml)
	e.Binary = private.binary
	configPath := e.Args[1]
	job := simpleJob("echo stage started", "sleep 120", "echo never printed")

	started := make(chan struct{}, 1)
	type outcome struct {
		res *runner.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		res, err := e.Run(ctx, job, runner.OnExecStart(func(x runner.Exec, _ int) {
			if x.Stage == "build_script" {
				started <- struct{}{}
			}
		}))
		done <- outcome{res, err}
	}()
	select {
	case <-started:
	case o := <-done:
		t.Fatalf("the job ended before build_script started: %v %+v", o.err, o.res.Outcome)
	case <-time.After(3 * time.Minute):
		t.Fatal("build_script did not start within 3 minutes")
	}
	time.Sleep(time.Second)
	restartStarted := time.Now()
	private.restart(t)
	t.Logf("private Engine restarted in %s", time.Since(restartStarted).Round(time.Millisecond))

	o := <-done
	if o.err != nil {
		t.Fatalf("runner emulator: %v", o.err)
	}
	log := runner.PlainText(o.res.Log)
	if o.res.Outcome.Kind != runner.OutcomeSystemFailure {
		t.Fatalf("outcome = %s, want a system failure\n%s", o.res.Outcome, log)
	}
	var build runner.Exec
	for _, x := range o.res.Execs {
		if x.Stage == "build_script" {
			build = x
		}
	}
	if build.ExitCode != 2 {
		t.Errorf("build_script exit code %d, want 2 (system failure)", build.ExitCode)
	}
	for _, want := range []string{"ERROR: dind-executor: run stage build_script", "the sandbox is lost"} {
		if !strings.Contains(build.Output, want) {
			t.Errorf("build_script output lacks %q:\n%s", want, build.Output)
		}
	}
	if strings.Contains(log, "\nnever printed") {
		t.Error("the script went on")
	}

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("job log:\n%s\nrunner log:\n%s", log, o.res.RunnerLog)
		}
	})
	gc := runBinary(t, private.binary, "--config", configPath, "gc")
	if gc.exitCode != 0 {
		t.Fatalf("gc exit %d: %s\n%s", gc.exitCode, gc.stderr, gc.stdout)
	}
	if left := objectsLabelled(t, private.api(t), executor.LabelJobID, strconv.FormatInt(job.ID, 10)); len(left) > 0 {
		t.Errorf("left on the restarted Engine after cleanup and gc: %v", left)
	}
	records := auditJSON(t, configPath, "--job", strconv.FormatInt(job.ID, 10))
	for _, r := range records {
		if r.Stage != nil && r.Stage.Name == "build_script" && !strings.Contains(r.Error, "the sandbox is lost") {
			t.Errorf("build_script's trail record does not say what happened: %+v", r)
		}
	}
	if d := recordOf(t, records, audit.EventSandboxDestroyed).Destroyed; d.By != "cleanup" || len(d.Containers) != 3 {
		t.Errorf("cleanup after the restart: %+v", d)
	}
}

// execAs runs cmd in a container as user through the Engine API and
// returns its exit code and combined output.
func execAs(t *testing.T, api *client.Client, containerName, user string, cmd ...string) (int, string) {
	t.Helper()
	code, out, err := execInContainer(api, containerName, user, cmd...)
	if err != nil {
		t.Fatal(err)
	}
	return code, out
}

// A's build container is put on B's network on purpose, so nothing but
// the certificates stands between it and B's daemon: B's daemon still
// refuses A's client certificate, and A's client refuses B's daemon.
// (Without that, B's daemon is not even reachable: isolation_test.go.)
func TestCertificatesAloneKeepJobsApart(t *testing.T) {
	t.Parallel()
	engine := connect(t)
	boxes := prepareSandboxes(t, engine, 2)
	a, b := boxes[0], boxes[1]
	api := dockerAPI(t)
	ctx := context.Background()
	if _, err := api.NetworkConnect(ctx, b.id.Name(executor.RoleNetwork), client.NetworkConnectOptions{Container: a.id.Name(executor.RoleBuild)}); err != nil {
		t.Fatal(err)
	}
	// Registered after the sandboxes' teardown, so it runs before it.
	t.Cleanup(func() {
		_, _ = api.NetworkDisconnect(context.Background(), b.id.Name(executor.RoleNetwork), client.NetworkDisconnectOptions{Container: a.id.Name(executor.RoleBuild), Force: true})
	})
	cert := "--cert /certs/client/cert.pem --key /certs/client/key.pem"
	cases := []scriptCase{
		{"B's daemon is reachable now", fmt.Sprintf("timeout 5 bash -c 'echo > /dev/tcp/%s/2376' && echo reachable", b.daemonIP), 0, "reachable"},
		{"B's daemon refuses A's client certificate", fmt.Sprintf("curl -sSk --max-time 10 %s https://%s:2376/_ping", cert, b.daemonIP), anyFailure, "alert"},
		{"A's client refuses B's daemon", fmt.Sprintf("curl -sS --max-time 10 --cacert /certs/client/ca.pem %s https://%s:2376/_ping", cert, b.daemonIP), anyFailure, "certificate"},
		{"the docker CLI with A's certificate", fmt.Sprintf("timeout 10 docker -H tcp://%s:2376 version", b.daemonIP), anyFailure, "certificate"},
		// On two networks the name "docker" is ambiguous (each daemon has
		// that alias on its own network): pin it to A's daemon.
		{"A's own daemon still answers A", fmt.Sprintf("curl -sS --max-time 10 --resolve docker:2376:%s --cacert /certs/client/ca.pem %s https://docker:2376/_ping", a.daemonIP, cert), 0, "OK"},
	}
	runScriptCases(t, engine, a.id, executor.RoleBuild, cases)
}

// sandboxRights is what the test reads from the Engine while a job runs.
type sandboxRights struct {
	errs     []string
	key      []byte
	upperDir string
	otherUID string
}

func (r *sandboxRights) errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// The build container runs as the job's user, unprivileged, without the
// Engine socket or host paths beyond the configured volumes, with the
// configured limits (read back from the Engine and from its cgroups); its
// client key is readable by that user only; after cleanup neither the key
// nor the script is anywhere on the host.
func TestSandboxRightsAndWhatIsLeftOnTheHost(t *testing.T) {
	t.Parallel()
	limits := "\n[limits]\ncpus = 1.5\nmemory = \"512m\"\npids = 300\n"
	e := newEmulator(t, seedConfig()+limits)
	e.TempRoot = t.TempDir()
	marker := fmt.Sprintf("script-marker-%d", newJobID())
	job := simpleJob(
		"id -un",
		"stat -c 'key %a %U' /certs/client/key.pem",
		"echo pids $(cat /sys/fs/cgroup/pids/pids.max) memory $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes) quota $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)",
		"test ! -e /var/run/docker.sock && echo no engine socket",
		"docker version --format 'inner daemon {{.Server.Version}} as '$(id -un)",
		": "+marker,
	)
	job.Image.User = "nobody"
	started := time.Now()
	api := dockerAPI(t)
	rights := &sandboxRights{}
	res := runJob(t, e, job, runner.OnExecStart(func(x runner.Exec, _ int) {
		if x.Stage == "build_script" {
			inspectRights(t, api, x.TempDir, rights)
		}
	}))
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	for _, e := range rights.errs {
		t.Error(e)
	}
	log := runner.PlainText(res.Log)
	for _, want := range []string{"\nnobody\n", "key 600 nobody", "pids 300 memory 536870912 quota 150000", "no engine socket", "as nobody"} {
		if !strings.Contains(log, want) {
			t.Errorf("job log lacks %q", want)
		}
	}
	if !strings.Contains(rights.otherUID, "Permission denied") {
		t.Errorf("another user read the client key: %q", rights.otherUID)
	}

	// Nothing on the host: the build container's files went with it, the
	// runner's temp root is empty, and no recent file holds the key or the
	// script.
	if len(rights.key) == 0 || rights.upperDir == "" {
		t.Fatal("the key or the container's upper dir was not read during the job")
	}
	if _, err := os.Stat(rights.upperDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the build container's files are still on the host at %s: %v", rights.upperDir, err)
	}
	if entries, _ := os.ReadDir(e.TempRoot); len(entries) > 0 {
		t.Errorf("left in the runner's temp root: %v", entries)
	}
	keyBody := keyFingerprintLine(rights.key)
	for _, root := range []string{"/tmp", "/var/tmp", "/run", "/etc", "/var/log", "/root", "/var/lib/docker/containers"} {
		if found := recentFilesContaining(root, started, keyBody, marker); len(found) > 0 {
			t.Errorf("key or script found on the host: %v", found)
		}
	}
	assertJobLeftNothing(t, job.ID)
}

// inspectRights reads, while the job runs, what the Engine applied to the
// sandbox. It runs on the emulator's goroutine: it records, never fails.
func inspectRights(t *testing.T, api *client.Client, runnerTempDir string, r *sandboxRights) {
	hostname, _ := os.Hostname()
	id := executor.Identity{SandboxID: stages.SandboxID(hostname, filepath.Join(runnerTempDir, runner.JobResponseFileName))}
	ctx := context.Background()
	want := container.Resources{NanoCPUs: 1_500_000_000, Memory: 512 << 20}
	for _, role := range []executor.Role{executor.RoleDaemon, executor.RoleBuild, executor.RoleHelper} {
		res, err := api.ContainerInspect(ctx, id.Name(role), client.ContainerInspectOptions{})
		if err != nil {
			r.errorf("inspect %s: %v", role, err)
			continue
		}
		h := res.Container.HostConfig
		if h.NanoCPUs != want.NanoCPUs || h.Memory != want.Memory || h.PidsLimit == nil || *h.PidsLimit != 300 {
			r.errorf("%s container limits: cpus %d memory %d pids %v, want 1.5 CPUs, 512 MiB, 300", role, h.NanoCPUs, h.Memory, h.PidsLimit)
		}
		if role == executor.RoleDaemon {
			continue
		}
		if h.Privileged || len(h.CapAdd) > 0 || len(h.Devices) > 0 || len(h.DeviceCgroupRules) > 0 {
			r.errorf("%s container has elevated rights: privileged=%v capadd=%v devices=%v", role, h.Privileged, h.CapAdd, h.Devices)
		}
		for _, m := range res.Container.Mounts {
			switch {
			case m.Type == "volume" && strings.HasPrefix(m.Name, "dind-"):
			case m.Type == "bind" && m.Source == env.repoDir && m.Destination == seedjob.RepoMount && !m.RW:
			default:
				r.errorf("%s container has a mount not in the config: %+v", role, m)
			}
		}
		if role == executor.RoleBuild {
			if res.Container.Config.User != "nobody" {
				r.errorf("build container user %q, want nobody", res.Container.Config.User)
			}
			r.upperDir = res.Container.GraphDriver.Data["UpperDir"]
			r.key = copyFrom(t, api, id.Name(role), executor.ClientCertDir)["key.pem"]
			_, r.otherUID = execAs(t, api, id.Name(role), "4242", "cat", executor.ClientCertDir+"/key.pem")
		}
	}
}

// keyFingerprintLine is a line of the PEM body, long enough to be unique.
func keyFingerprintLine(pemKey []byte) string {
	for _, line := range strings.Split(string(pemKey), "\n") {
		if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
			return line
		}
	}
	return string(pemKey)
}

// recentFilesContaining walks root for regular files modified since
// `since`, up to 4 MiB, that contain any of needles.
func recentFilesContaining(root string, since time.Time, needles ...string) []string {
	var found []string
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if path == "/root/go" || path == "/root/.cache" || strings.HasPrefix(filepath.Base(path), "dexd") {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil || !info.Mode().IsRegular() || info.Size() > 4<<20 || info.ModTime().Before(since) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		for _, n := range needles {
			if bytes.Contains(data, []byte(n)) {
				found = append(found, path)
			}
		}
		return nil
	})
	return found
}

// Eight jobs at once on a two-core machine: all succeed, each daemon holds
// only what its own job made, each sandbox has its own CA, and nothing is
// left. Their hooks share one audit trail, which must come out whole.
func TestEightJobsAtOnce(t *testing.T) {
	t.Parallel()
	const n = 8
	toml, trail := withAudit(t, seedConfig())
	script := []string{
		"docker volume create mine-$CI_JOB_ID",
		`test "$(docker volume ls -q)" = "mine-$CI_JOB_ID"`,
		"cp /bin/busybox . && printf 'FROM scratch\\nCOPY busybox /bin/busybox\\n' > Dockerfile.bb && docker build -q -t bb:$CI_JOB_ID -f Dockerfile.bb .",
		`test "$(docker image ls -q | wc -l)" = 1`,
		"docker run --rm bb:$CI_JOB_ID /bin/busybox echo hello from $CI_JOB_ID",
	}
	jobs := make([]runner.Job, n)
	results := make([]*runner.Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range jobs {
		jobs[i] = simpleJob(script...)
		e := newEmulator(t, toml)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			results[i], errs[i] = e.Run(ctx, jobs[i])
		})
	}
	wg.Wait()
	t.Logf("%d jobs at once: %s wall time", n, time.Since(start).Round(100*time.Millisecond))

	for i, job := range jobs {
		if errs[i] != nil {
			t.Fatalf("job %d: emulator: %v", job.ID, errs[i])
		}
		if results[i].Outcome.Kind != runner.OutcomeSuccess {
			t.Errorf("job %d: outcome %s\n%s", job.ID, results[i].Outcome, runner.PlainText(results[i].Log))
			continue
		}
		if !strings.Contains(runner.PlainText(results[i].Log), fmt.Sprintf("hello from %d", job.ID)) {
			t.Errorf("job %d did not run its own image", job.ID)
		}
		assertJobLeftNothing(t, job.ID)
	}

	res, err := audit.ReadFile(context.Background(), trail, audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 0 {
		t.Errorf("%d torn lines in the shared trail", res.Skipped)
	}
	// A prepare that failed on the crowded machine is retried, like the
	// runner does; its cleanup removes what it made and records that too.
	// So: one destroyed record per prepare attempt that got as far as a
	// sandbox, at least one per job, and every failure says why.
	sandboxes, cas := map[string]bool{}, map[string]bool{}
	destroyed, failed := 0, 0
	for _, r := range res.Records {
		switch r.Event {
		case audit.EventSandboxCreated:
			sandboxes[r.Sandbox], cas[r.Created.CA.Fingerprint] = true, true
		case audit.EventSandboxDestroyed:
			destroyed++
		case audit.EventPrepareFailed:
			failed++
			t.Logf("job %d: a prepare attempt failed (retried): %s", r.Job.ID, r.Error)
		}
	}
	if len(sandboxes) != n || len(cas) != n || destroyed < n || destroyed > n+failed {
		t.Errorf("%d sandboxes, %d CAs, %d destroyed in the trail (%d prepares failed), want %d sandboxes and CAs, %d to %d destroyed",
			len(sandboxes), len(cas), destroyed, failed, n, n, n+failed)
	}
}

// Two runners (of two GitLab instances) run jobs with the same id at the
// same time: two sandboxes, each job talks only to its own daemon, and the
// first cleanup, while the other job still runs, removes only its own.
func TestSameJobIDOnTwoRunners(t *testing.T) {
	t.Parallel()
	// The order is made, not timed: the first job ends only once both
	// sandboxes are up, the second only once the first job's cleanup is
	// over; the test signals each through a directory both build
	// containers mount read-only.
	signals := t.TempDir()
	config := strings.Replace(seedConfig(), `volumes = ["`, fmt.Sprintf(`volumes = ["%s:/signals:ro", "`, signals), 1)
	toml, _ := withAudit(t, config)
	id := newJobID()
	waitForSignal := func(name string) string {
		return fmt.Sprintf(`i=0; until [ -e /signals/%s ]; do i=$((i+1)); [ $i -lt 1500 ] || exit 9; sleep 0.2; done`, name)
	}
	jobFor := func(marker, signal string) runner.Job {
		job := simpleJob(
			"docker volume create "+marker,
			waitForSignal(signal),
			`test "$(docker volume ls -q)" = "`+marker+`"`,
			"docker info --format 'daemon still answers'",
		)
		job.ID, job.PipelineID = id, id*10
		return job
	}
	jobs := []runner.Job{jobFor("first-runner", "both-up"), jobFor("second-runner", "first-cleaned")}
	results := make([]*runner.Result, len(jobs))
	errs := make([]error, len(jobs))
	emulators := []*runner.Emulator{newEmulator(t, toml), newEmulator(t, toml)}
	done := make([]chan struct{}, len(jobs))
	for i := range jobs {
		done[i] = make(chan struct{})
		go func() {
			defer close(done[i])
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			results[i], errs[i] = emulators[i].Run(ctx, jobs[i])
		}()
	}
	signal := func(name string) {
		if err := os.WriteFile(filepath.Join(signals, name), nil, 0o644); err != nil {
			t.Error(err)
		}
	}
	builds := client.Filters{}.Add("label", executor.LabelJobID+"="+strconv.FormatInt(id, 10)).Add("label", executor.LabelRole+"="+string(executor.RoleBuild))
	for bothUpBy := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		list, err := dockerAPI(t).ContainerList(context.Background(), client.ContainerListOptions{Filters: builds})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) == 2 {
			break
		}
		if time.Now().After(bothUpBy) {
			t.Errorf("the two sandboxes of job %d were not up together within 3 minutes (%d build containers)", id, len(list.Items))
			break
		}
	}
	signal("both-up")
	<-done[0]
	signal("first-cleaned")
	<-done[1]
	for i := range jobs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if results[i].Outcome.Kind != runner.OutcomeSuccess {
			t.Errorf("runner %d: outcome %s\n%s", i, results[i].Outcome, runner.PlainText(results[i].Log))
		}
	}
	firstCleanup, secondBuild := lastExec(results[0], "cleanup"), lastExec(results[1], "build_script")
	if firstCleanup.Kind != runner.ExecCleanup || !firstCleanup.Started.Add(firstCleanup.Duration).Before(secondBuild.Started.Add(secondBuild.Duration)) {
		t.Errorf("the first job's cleanup did not end while the second job's script ran")
	}

	records := auditJSON(t, emulators[0].Args[1], "--job", strconv.FormatInt(id, 10))
	removedBy := map[string][]string{}
	for _, r := range records {
		if r.Destroyed != nil {
			removedBy[r.Sandbox] = append(append(append(removedBy[r.Sandbox], r.Destroyed.Containers...), r.Destroyed.Volumes...), r.Destroyed.Networks...)
		}
	}
	if len(removedBy) != 2 {
		t.Fatalf("%d sandboxes destroyed for job %d, want 2: %v", len(removedBy), id, eventsOf(records))
	}
	for sandbox, names := range removedBy {
		for _, name := range names {
			if !strings.Contains(name, sandbox) {
				t.Errorf("cleanup of sandbox %s removed %s", sandbox, name)
			}
		}
	}
	assertJobLeftNothing(t, id)
}

// lastExec is the last exec of a kind ("cleanup") or stage ("build_script").
func lastExec(res *runner.Result, what string) runner.Exec {
	var last runner.Exec
	for _, x := range res.Execs {
		if x.Stage == what || string(x.Kind) == what {
			last = x
		}
	}
	return last
}
