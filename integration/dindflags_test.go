package integration

import (
	"context"
	"fmt"
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

// What a pipeline asks of its dind service, written as .gitlab-ci.yml
// writes it, reaches the sandbox's own daemon: dockerd flags in the
// service's command, the variables dockerd reads, a pinned version where
// the operator allows it. What would weaken the sandbox fails the job at
// prepare, naming the flag.

// dindService is a docker:dind service as a pipeline writes it.
func dindService(command ...string) runner.Image {
	return runner.Image{Name: "docker:dind", Command: command}
}

// innerMTUScript prints the MTU of the daemon's default bridge and of a
// network the job creates, as the daemon reports them.
var innerMTUScript = []string{
	`echo "default bridge mtu=$(docker network inspect bridge --format '{{index .Options "com.docker.network.driver.mtu"}}')"`,
	"docker network create dind-flags-test >/dev/null",
	`echo "new network mtu=$(docker network inspect dind-flags-test --format '{{index .Options "com.docker.network.driver.mtu"}}')"`,
}

// services: [{name: docker:dind, command: ["--mtu=1400",
// "--insecure-registry=registry.test:5000"]}]: inside the job, docker info
// shows the insecure registry and the daemon's networks take MTU 1400. The
// runner keeps a warm pool; the job does not take the pooled daemon (made
// without its flags), which stays for the next job.
func TestDinDServiceFlagsReachTheDaemon(t *testing.T) {
	t.Parallel()
	// A pids limit of its own gives this test its own pool.
	toml := seedConfig() + fmt.Sprintf("\n[limits]\npids = %d\n\n[pool]\nsize = 1\n", 5000+newJobID()%1000)
	e := newEmulator(t, toml)
	e.PrepareAttempts = 1
	key, pool := warmPool(t, e, toml)
	if out := pool("fill"); !strings.Contains(out, "started 1 pooled daemons") {
		t.Fatalf("pool fill: %s", out)
	}

	job := simpleJob(append([]string{
		`docker info --format 'insecure registries: {{range $name, $c := .RegistryConfig.IndexConfigs}}{{if not $c.Secure}}{{$name}} {{end}}{{end}}'`,
	}, innerMTUScript...)...)
	job.Services = []runner.Image{dindService("--mtu=1400", "--insecure-registry=registry.test:5000")}
	var cmd []string
	var once sync.Once
	api := dockerAPI(t)
	res := runJob(t, e, job, runner.OnExecStart(func(x runner.Exec, _ int) {
		if x.Stage == runner.StageBuildScript {
			once.Do(func() {
				if d := daemonOf(t, api, job.ID).Container; d.Config != nil {
					cmd = d.Config.Cmd
				}
			})
		}
	}))
	log := runner.PlainText(res.Log)
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	assertLog(t, log,
		"Service docker:dind: its daemon takes --mtu=1400 --insecure-registry=registry.test:5000",
		"insecure registries: registry.test:5000 ",
		"default bridge mtu=1400\n",
		"new network mtu=1400\n",
		"Daemon: Docker Engine ")
	assertNotInLog(t, log, "Took a warm daemon", "runs on pooled daemon")
	if !strings.Contains(strings.Join(cmd, " "), "--mtu=1400 --default-network-opt=bridge=com.docker.network.driver.mtu=1400") ||
		!strings.Contains(strings.Join(cmd, " "), "--insecure-registry=registry.test:5000") {
		t.Errorf("daemon command %q lacks the job's flags", cmd)
	}
	if n := poolObjects(t, key, string(executor.RoleDaemon)); n != 1 {
		t.Errorf("%d pooled daemons after the job, want the one it did not take", n)
	}
	assertJobLeftNothing(t, job.ID)
}

// daemonOf inspects the daemon container of a running job. It runs in the
// emulator's goroutine: it reports, never stops the test.
func daemonOf(t *testing.T, api *client.Client, jobID int64) client.ContainerInspectResult {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := api.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.
		Add("label", executor.LabelJobID+"="+strconv.FormatInt(jobID, 10)).Add("label", executor.LabelRole+"="+string(executor.RoleDaemon))})
	if err != nil || len(list.Items) != 1 {
		t.Errorf("the job's daemon container: %d found, %v", len(list.Items), err)
		return client.ContainerInspectResult{}
	}
	res, err := api.ContainerInspect(ctx, list.Items[0].ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Error(err)
	}
	return res
}

// A flag that would open the daemon fails the job at prepare, as other
// policy refusals do, with a message naming the flag and what to do.
func TestDinDServiceFlagThatWouldOpenTheDaemonIsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		command []string
		want    []string
	}{
		{"-H", []string{"-H", "tcp://0.0.0.0:2375"},
			[]string{`service docker:dind asks its Docker daemon for "-H tcp://0.0.0.0:2375", which this executor refuses`, "remove it from the service's command"}},
		{"--tls=false", []string{"--mtu=1400", "--tls=false"},
			[]string{`service docker:dind asks its Docker daemon for "--tls=false", which this executor refuses`, `set DOCKER_HOST=tcp://docker:2375 and DOCKER_TLS_CERTDIR=""`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			job := simpleJob("echo never")
			job.Services = []runner.Image{dindService(tc.command...)}
			e := newEmulator(t, seedConfig())
			e.PrepareAttempts = 1
			res := runJob(t, e, job)
			log := runner.PlainText(res.Log)
			if res.Outcome.Kind != runner.OutcomeSystemFailure {
				t.Fatalf("outcome %s, want the system failure of a refused prepare", res.Outcome)
			}
			assertLog(t, log, tc.want...)
			assertNotInLog(t, log, "never\n")
			assertJobLeftNothing(t, job.ID)
		})
	}
}

// The dind service's variables that dockerd reads reach the daemon: docker
// info shows the proxy, DOCKER_DRIVER picks the storage driver; the build
// container does not get the service's variables; DOCKER_TLS_CERTDIR is
// left out and the job log says why.
func TestDinDServiceVariablesReachTheDaemon(t *testing.T) {
	t.Parallel()
	job := simpleJob(
		`docker info --format 'proxies: http={{.HTTPProxy}} https={{.HTTPSProxy}} no={{.NoProxy}}'`,
		`docker info --format 'storage driver: {{.Driver}}'`,
		`if env | grep -i '_proxy='; then echo "BUILD HAS" "A PROXY"; fi`,
		"docker info --format 'still over TLS: {{.ServerVersion}}'",
	)
	svc := dindService()
	svc.Variables = []runner.Variable{
		runner.Var("HTTP_PROXY", "http://127.0.0.1:3128"),
		runner.Var("https_proxy", "http://127.0.0.1:3129"),
		runner.Var("NO_PROXY", "registry.test,.internal"),
		runner.Var("DOCKER_DRIVER", "vfs"),
		runner.Var("DOCKER_TLS_CERTDIR", ""),
	}
	job.Services = []runner.Image{svc}
	log := runDaemonJob(t, seedConfig(), job)
	assertLog(t, log,
		"The job's HTTP_PROXY, HTTPS_PROXY, NO_PROXY reach its daemon",
		"DOCKER_DRIVER=vfs reaches the daemon as --storage-driver=vfs",
		"DOCKER_TLS_CERTDIR does not reach the sandbox's daemon: it always has TLS",
		"proxies: http=http://127.0.0.1:3128 https=http://127.0.0.1:3129 no=registry.test,.internal",
		"storage driver: vfs",
		"still over TLS: ")
	assertNotInLog(t, log, "BUILD HAS A PROXY")
}

// services: [docker:<version>-dind] pins the daemon's version. Without the
// operator's permission the operator's dind image serves and the job log
// says so; with it (policy.allowed_dind_images) the pinned image runs the
// daemon. A pinned image that says it is older than Docker 24 gets no
// --default-network-opt, which its dockerd would refuse, and the job log
// says what that costs. Offline, the pinned versions are the local dind
// image under test-only names.
func TestPinnedDinDVersion(t *testing.T) {
	t.Parallel()
	suffix := strconv.FormatInt(newJobID(), 36)
	pinned := tagImage(t, seedjob.DaemonImage, "dind-executor.local/docker:pinned-"+suffix+"-dind")
	old := tagImage(t, buildImage(t, "FROM "+seedjob.DaemonImage+"\nENV DOCKER_VERSION=20.10.16\n"), "dind-executor.local/docker:20.10.16-"+suffix+"-dind")
	allow := seedConfig() + "\n[policy]\nallowed_dind_images = [\"dind-executor.local/docker:*-dind\"]\n"
	for _, tc := range []struct {
		name, config, image, serves string
		want, unwanted              []string
	}{
		{"without the operator's permission", seedConfig(), pinned, seedjob.DaemonImage,
			[]string{"Daemon image: " + seedjob.DaemonImage + ", the runner's dind_image, not " + pinned + " as the job's services ask: policy.allowed_dind_images does not list it",
				"Daemon: Docker Engine ", ", image " + seedjob.DaemonImage + "\n"},
			[]string{"WARNING: daemon image", "new network mtu=\n"}},
		{"with it", allow, pinned, pinned,
			[]string{"Daemon image: " + pinned + ", as service " + pinned + " asks (policy.allowed_dind_images lists it; the runner's dind_image is " + seedjob.DaemonImage + ")",
				"Daemon: Docker Engine ", ", image " + pinned + "\n"},
			[]string{"WARNING: daemon image", "new network mtu=\n"}},
		{"an old version", allow, old, old,
			[]string{"Daemon image: " + old + ", as service " + old + " asks",
				"WARNING: daemon image " + old + " is Docker 20.10.16, older than 24, which has no --default-network-opt",
				", image " + old + "\n", "new network mtu=\n"},
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := simpleJob(append([]string{"docker info --format 'pinned test: v{{.ServerVersion}}'"}, innerMTUScript...)...)
			job.Services = []runner.Image{{Name: tc.image, Alias: "docker"}}
			var label string
			var once sync.Once
			api := dockerAPI(t)
			log := runDaemonJob(t, tc.config, job, runner.OnExecStart(func(x runner.Exec, _ int) {
				if x.Stage == runner.StageBuildScript {
					once.Do(func() {
						if d := daemonOf(t, api, job.ID).Container; d.Config != nil {
							label = d.Config.Labels[executor.LabelImage]
						}
					})
				}
			}))
			// The daemon's answer, not the echoed command (which has "v{{").
			assertLog(t, log, append(tc.want, "pinned test: v2")...)
			assertNotInLog(t, log, tc.unwanted...)
			if label != tc.serves {
				t.Errorf("the daemon container runs %q, want %q", label, tc.serves)
			}
		})
	}
}

// GitLab's documented TLS-off recipe also writes command: ["--tls=false"]
// on the service: with the TLS-off variables, that is what the sandbox
// already serves (a plain endpoint for the build container), so the job
// runs unchanged and the daemon keeps its mutual TLS.
func TestTLSOffRecipeWithTLSFalseCommand(t *testing.T) {
	t.Parallel()
	job := tlsOffJob(
		"docker info --format 'plain endpoint: {{.ServerVersion}}'",
		"docker --tlsverify -H tcp://docker:2376 info --format 'mutual TLS beside it: {{.ServerVersion}}'",
	)
	job.Services[0].Command = []string{"--tls=false"}
	var cmd []string
	var once sync.Once
	api := dockerAPI(t)
	log := runDaemonJob(t, seedConfig(), job, runner.OnExecStart(func(x runner.Exec, _ int) {
		if x.Stage == runner.StageBuildScript {
			once.Do(func() {
				if d := daemonOf(t, api, job.ID).Container; d.Config != nil {
					cmd = d.Config.Cmd
				}
			})
		}
	}))
	assertLog(t, log,
		`Service docker:dind: "--tls=false" is already what the sandbox's daemon serves (the job's variables turn TLS off: port 2375 answers the build container without TLS)`,
		"also answers plain tcp://docker:2375, to the build container only",
		"plain endpoint: ", "mutual TLS beside it: ")
	if strings.Contains(strings.Join(cmd, " "), "--tls") {
		t.Errorf("the daemon was given %q: its mutual TLS must stay", cmd)
	}
}
