package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/executor/audit"
	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// rootlessDaemonImage is built by integration/images/build.sh.
const rootlessDaemonImage = seedjob.RootlessDaemonImage

// rootlessConfig is the seed config with the rootless daemon profile.
func rootlessConfig(t *testing.T) string {
	t.Helper()
	if _, err := dockerAPI(t).ImageInspect(context.Background(), rootlessDaemonImage); err != nil {
		t.Fatalf("image %s is missing (%v): run integration/images/build.sh", rootlessDaemonImage, err)
	}
	return seedjob.RootlessConfig(env.repoDir)
}

// hostProcess is a process of the host found by its command line.
type hostProcess struct {
	pid  int
	uids []string // real, effective, saved, filesystem, as the host sees them
}

// findHostProcess scans the host's /proc (the test runs beside the Engine,
// as root) for a process whose arguments are exactly argv.
func findHostProcess(argv ...string) (hostProcess, bool) {
	want := strings.Join(argv, "\x00") + "\x00"
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmdline, err := os.ReadFile(d + "/cmdline")
		if err != nil || string(cmdline) != want {
			continue
		}
		f, err := os.Open(d + "/status")
		if err != nil {
			continue
		}
		var p hostProcess
		p.pid, _ = strconv.Atoi(filepath.Base(d))
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
				p.uids = strings.Fields(v)
			}
		}
		f.Close()
		if p.uids != nil {
			return p, true
		}
	}
	return hostProcess{}, false
}

// hostBlockDevices are the host's block devices (vda, sda, nvme0n1...).
func hostBlockDevices(t *testing.T) []string {
	entries, err := os.ReadDir("/sys/block")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "loop") && !strings.HasPrefix(e.Name(), "ram") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestRootlessProfileRunsTheSeedJobConfined runs the seed job (a
// docker:dind-rootless service; multi-stage build, then a run of the
// image) with daemon_security = "rootless", and checks while it runs that:
// the daemon container the Engine reports is not privileged and holds
// exactly the profile's documented rights, as its user; a --privileged
// container the job starts in its daemon sees no host device, cannot make
// one nor write a kernel setting, and its root is an unprivileged uid on
// the host. The audit trail records the profile and the rights.
func TestRootlessProfileRunsTheSeedJobConfined(t *testing.T) {
	t.Parallel()
	toml, _ := withAudit(t, rootlessConfig(t))
	job := seedjob.Job(newJobID(), env.repoSHA)
	job.Services = []runner.Image{{Name: "docker:27-dind-rootless", Alias: "docker"}}
	marker := fmt.Sprintf("%d", 900000+job.ID%100000) // sleep's argument: a number, unique enough
	privileged := `docker run --rm --privileged my-app:$CI_COMMIT_SHA /bin/busybox sh -c '` +
		`echo "privdev: $(/bin/busybox ls /dev | /bin/busybox tr "\n" " ")"; ` +
		`/bin/busybox mknod /blk b 253 0 && echo MKNOD-SUCCEEDED; ` +
		`echo x > /proc/sys/kernel/core_pattern && echo CORE-PATTERN-WRITTEN; ` +
		`echo 1 > /proc/sysrq-trigger 2>/dev/null && echo SYSRQ-WRITTEN; ` +
		`echo "privuidmap: $(/bin/busybox cat /proc/self/uid_map | /bin/busybox tr -s " " | /bin/busybox tr "\n" ";")"; true'`
	job.Script = append(job.Script,
		privileged,
		"docker run -d --privileged --name sleeper my-app:$CI_COMMIT_SHA /bin/busybox sleep "+marker,
		"sleep 8",
		"docker rm -f sleeper",
	)

	type seen struct {
		proc   hostProcess
		daemon client.ContainerInspectResult
		err    error
	}
	found := make(chan seen, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	go func() {
		api, err := client.New(client.FromEnv)
		if err != nil {
			found <- seen{err: err}
			return
		}
		defer api.Close()
		for ctx.Err() == nil {
			if p, ok := findHostProcess("/bin/busybox", "sleep", marker); ok {
				s := seen{proc: p}
				list, err := api.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.
					Add("label", executor.LabelJobID+"="+strconv.FormatInt(job.ID, 10)).
					Add("label", executor.LabelRole+"="+string(executor.RoleDaemon))})
				if err == nil && len(list.Items) == 1 {
					s.daemon, err = api.ContainerInspect(ctx, list.Items[0].ID, client.ContainerInspectOptions{})
				} else if err == nil {
					err = fmt.Errorf("%d daemon containers for job %d", len(list.Items), job.ID)
				}
				s.err = err
				found <- s
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		found <- seen{err: ctx.Err()}
	}()

	e := newEmulator(t, toml)
	res := runJob(t, e, job)
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	log := runner.PlainText(res.Log)
	for _, want := range []string{
		"Service docker:27-dind-rootless: provided by the sandbox's own daemon",
		"(rootless, certificates valid until",
		"inner daemon ",
		"naming to docker.io/library/my-app:" + job.SHA,
		seedjob.AppGreeting + " (version 1.0.0)",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("job log lacks %q", want)
		}
	}
	if m := regexp.MustCompile(`ready in ([0-9.]+s)`).FindStringSubmatch(log); m != nil {
		t.Logf("rootless daemon ready in %s", m[1])
	}
	if m := regexp.MustCompile(`(?m)^privuidmap: (.*)$`).FindStringSubmatch(log); m == nil || strings.Join(strings.Fields(m[1]), " ") != "0 1000 1; 1 100000 65536;" {
		t.Errorf("the privileged container's uid map %q, want 0 1000 1; 1 100000 65536;", m)
	}
	lines := strings.Split(log, "\n")
	for _, never := range []string{"MKNOD-SUCCEEDED", "CORE-PATTERN-WRITTEN", "SYSRQ-WRITTEN"} {
		if slices.Contains(lines, never) {
			t.Errorf("a --privileged container in the rootless sandbox could: %s", never)
		}
	}
	devs := regexp.MustCompile(`(?m)^privdev: (.*)$`).FindStringSubmatch(log)
	if devs == nil {
		t.Fatal("the privileged container did not list /dev")
	}
	for _, blk := range hostBlockDevices(t) {
		if slices.Contains(strings.Fields(devs[1]), blk) {
			t.Errorf("the privileged container sees the host's block device %s: %s", blk, devs[1])
		}
	}

	s := <-found
	if s.err != nil {
		t.Fatalf("watching the job's privileged container from the host: %v", s.err)
	}
	// Root of the job's --privileged container is the daemon user's uid on
	// the host, never 0.
	if slices.Contains(s.proc.uids, "0") || len(s.proc.uids) != 4 {
		t.Errorf("the job's --privileged container runs as host uids %v, want none of them root", s.proc.uids)
	} else {
		t.Logf("the job's --privileged container's root is host uid %s (pid %d)", s.proc.uids[0], s.proc.pid)
	}

	d := s.daemon.Container
	h := d.HostConfig
	if h.Privileged {
		t.Error("the daemon container is privileged")
	}
	if !sameCaps(h.CapAdd, executor.RootlessCapAdd()) || !sameCaps(h.CapDrop, executor.RootlessCapDrop()) {
		t.Errorf("caps add %v drop %v, want add %v drop %v", h.CapAdd, h.CapDrop, executor.RootlessCapAdd(), executor.RootlessCapDrop())
	}
	if !slices.Equal(h.SecurityOpt, executor.RootlessSecurityOpt()) {
		t.Errorf("security opts %.300v, want the rootless profile's (its seccomp profile, apparmor=unconfined)", h.SecurityOpt)
	}
	if len(h.MaskedPaths) != 0 || len(h.ReadonlyPaths) != 0 {
		t.Errorf("masked %v read-only %v, want none (systempaths=unconfined)", h.MaskedPaths, h.ReadonlyPaths)
	}
	if len(h.Devices) != 1 || h.Devices[0].PathOnHost != "/dev/net/tun" || h.Devices[0].CgroupPermissions != "rwm" || len(h.DeviceCgroupRules) != 0 {
		t.Errorf("devices %+v rules %v, want /dev/net/tun only", h.Devices, h.DeviceCgroupRules)
	}
	if len(h.Binds) != 2 || !strings.HasSuffix(h.Binds[0], ":/home/rootless/.local/share/docker") || h.Binds[1] != "/sys:/sys:rw" || len(h.Mounts) != 0 {
		t.Errorf("binds %v mounts %v, want the data root and /sys only", h.Binds, h.Mounts)
	}
	if d.Config.User != "rootless" {
		t.Errorf("user %q, want the image's (rootless)", d.Config.User)
	}
	if h.PidMode != "" || h.IpcMode.IsHost() || h.NetworkMode.IsHost() || h.UsernsMode != "" || !h.CgroupnsMode.IsPrivate() {
		t.Errorf("namespaces: pid %q ipc %q net %q userns %q cgroupns %q", h.PidMode, h.IpcMode, h.NetworkMode, h.UsernsMode, h.CgroupnsMode)
	}

	records := auditJSON(t, e.Args[1], "--job", strconv.FormatInt(job.ID, 10))
	c := recordOf(t, records, audit.EventSandboxCreated).Created
	if c.DaemonSecurity != "rootless" {
		t.Errorf("audit daemon_security %q, want rootless", c.DaemonSecurity)
	}
	for _, ct := range c.Containers {
		if ct.Role != string(executor.RoleDaemon) {
			continue
		}
		if ct.Privileged || !sameCaps(ct.CapAdd, executor.RootlessCapAdd()) || !slices.Equal(ct.Devices, []string{"/dev/net/tun:/dev/net/tun:rwm"}) ||
			!ct.UnmaskedPaths || ct.User != "rootless" || len(ct.SecurityOpt) != 2 ||
			ct.SecurityOpt[0] != executor.SummarizeSecurityOpt(executor.RootlessSecurityOpt()[0]) || ct.SecurityOpt[1] != "apparmor=unconfined" {
			t.Errorf("audit daemon container %+v", ct)
		}
	}
	assertJobLeftNothing(t, job.ID)
}

// TestRootlessProfileRefusesARootImage: a job on the rootless profile with
// a daemon image that runs as root fails at prepare, saying why.
func TestRootlessProfileRefusesARootImage(t *testing.T) {
	t.Parallel()
	toml := strings.Replace(rootlessConfig(t), fmt.Sprintf("dind_image = %q", rootlessDaemonImage), fmt.Sprintf("dind_image = %q", seedjob.DaemonImage), 1)
	job := simpleJob("true")
	res := runJob(t, newEmulator(t, toml), job)
	if res.Outcome.Kind == runner.OutcomeSuccess {
		t.Fatal("a root daemon image ran on the rootless profile")
	}
	if log := runner.PlainText(res.Log); !strings.Contains(log, "runs as root") || !strings.Contains(log, "docker:dind-rootless layout") {
		t.Errorf("the job log does not say why:\n%s", log)
	}
	assertJobLeftNothing(t, job.ID)
}

// sameCaps compares capability lists as the Engine reports them back
// (CAP_ prefixed, sorted) with the profile's.
func sameCaps(got, want []string) bool {
	norm := func(l []string) []string {
		out := make([]string, 0, len(l))
		for _, c := range l {
			out = append(out, strings.TrimPrefix(strings.ToUpper(c), "CAP_"))
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(norm(got), norm(want))
}

// TestRootlessProfileTLSOffAndPublishedPorts: a job written with TLS off
// gets its plain endpoint from a rootless daemon too (the relay beside
// rootlesskit serves the rootless dockerd's socket), and a port the job
// publishes in its daemon answers on the daemon's address (rootlesskit's
// port driver).
func TestRootlessProfileTLSOffAndPublishedPorts(t *testing.T) {
	t.Parallel()
	steps := append([]string{"docker info --format 'plain endpoint: {{.ServerVersion}} {{.SecurityOptions}}'"}, publishedPortSteps()...)
	// The job's containers resolve the job network's names (through
	// slirp4netns's DNS forwarder to the Engine's embedded DNS).
	steps = append(steps, "docker run --rm bb:1 /bin/busybox nslookup build | /bin/busybox sed -n 's/^Address: /inner lookup of build: /p'")
	job := tlsOffJob(steps...)
	res := runJob(t, newEmulator(t, rootlessConfig(t)), job)
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	log := runner.PlainText(res.Log)
	if !regexp.MustCompile(`(?m)^inner lookup of build: [0-9]+\.[0-9]+\.[0-9]+\.[0-9]+`).MatchString(log) {
		t.Error("a container of the job's daemon did not resolve the build container's name")
	}
	for _, want := range []string{"plain endpoint: ", "name=rootless", "published-port-answers", "mutual TLS beside it: "} {
		if !strings.Contains(log, want) {
			t.Errorf("job log lacks %q", want)
		}
	}
	assertJobLeftNothing(t, job.ID)
}

// TestRootlessProfileWarmPool: the warm pool keeps rootless daemons too
// (the pool key includes the profile), and a job takes one.
func TestRootlessProfileWarmPool(t *testing.T) {
	t.Parallel()
	toml := rootlessConfig(t) + fmt.Sprintf("\n[limits]\npids = %d\n\n[pool]\nsize = 1\n", 5000+newJobID()%1000)
	e := newEmulator(t, toml)
	key, pool := warmPool(t, e, toml)
	if out := pool("fill"); !strings.Contains(out, "started 1 pooled daemons") {
		t.Fatalf("pool fill: %s", out)
	}
	waitFor(t, "a ready pooled daemon", 2*time.Minute, func() bool {
		return poolObjects(t, key, string(executor.RoleDaemon)) >= 1 && poolObjects(t, key, "pool-fill-lock") == 0
	})
	job := simpleJob("docker info --format 'warm daemon {{.ServerVersion}} {{.SecurityOptions}}'", busyboxImage("bb:1"), "docker run --rm bb:1 /bin/busybox id")
	res := runJob(t, e, job)
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s", res.Outcome)
	}
	log := runner.PlainText(res.Log)
	for _, want := range []string{"Took a warm daemon from the pool", "warm daemon ", "name=rootless", "uid=0 gid=0"} {
		if !strings.Contains(log, want) {
			t.Errorf("job log lacks %q", want)
		}
	}
	t.Logf("prepare with a warm rootless daemon took %s", res.ExecsOf(runner.ExecPrepare)[0].Duration)
	assertJobLeftNothing(t, job.ID)
}

// TestRootlessProfileSaysWhatAnImageLacks: a rootless image whose
// newuidmap is setuid root (as the official docker:dind-rootless's is)
// fails at prepare with what to change, not with rootlesskit's
// "write to uid_map failed".
func TestRootlessProfileSaysWhatAnImageLacks(t *testing.T) {
	t.Parallel()
	image := buildImage(t, "FROM "+rootlessDaemonImage+"\nUSER root\nRUN setcap -r /usr/bin/newuidmap && chmod u+s /usr/bin/newuidmap\nUSER rootless\n")
	toml := strings.Replace(rootlessConfig(t), fmt.Sprintf("dind_image = %q", rootlessDaemonImage), fmt.Sprintf("dind_image = %q", image), 1)
	toml = withReadyTimeout(t, toml, "20s")
	job := simpleJob("true")
	res := runJob(t, newEmulator(t, toml), job)
	if res.Outcome.Kind == runner.OutcomeSuccess {
		t.Fatal("a setuid newuidmap image ran on the rootless profile")
	}
	if log := runner.PlainText(res.Log); !strings.Contains(log, "/usr/bin/newuidmap is setuid root") || !strings.Contains(log, "setcap cap_setuid=ep") {
		t.Errorf("the job log does not say why")
	}
	assertJobLeftNothing(t, job.ID)
}

// Under the rootless profile a job's pinned dind image is never taken,
// whatever allowed_dind_images says: the executor runs commands of the
// daemon image as root in that container. The runner's image serves, and
// the job log says why.
func TestRootlessProfileTakesNoPinnedDaemonImage(t *testing.T) {
	t.Parallel()
	pinned := tagImage(t, rootlessDaemonImage, "dind-executor.local/docker:pinned-"+strconv.FormatInt(newJobID(), 36)+"-dind-rootless")
	toml := rootlessConfig(t) + "\n[policy]\nallowed_dind_images = [\"dind-executor.local/docker:*\"]\n"
	job := simpleJob("docker info --format 'rootless pin test: {{range .SecurityOptions}}{{.}} {{end}}'")
	job.Services = []runner.Image{{Name: pinned, Alias: "docker"}}
	res := runJob(t, newEmulator(t, toml), job)
	log := runner.PlainText(res.Log)
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s\n%s", res.Outcome, log)
	}
	assertLog(t, log,
		"Daemon image: "+rootlessDaemonImage+", the runner's dind_image, not "+pinned+" as the job's services ask: the rootless profile runs only the runner's dind_image",
		", image "+rootlessDaemonImage+"\n", "rootless pin test: name=seccomp", "name=rootless")
	assertJobLeftNothing(t, job.ID)
}
