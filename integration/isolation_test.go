package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/sirupsen/logrus"

	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/executor/containerfs"
	"gitlab.com/dind-executor/dind-executor/executor/tlsca"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// testSandbox is one prepared sandbox driven through the executor package.
type testSandbox struct {
	id       executor.Identity
	daemonIP string
	certs    tlsca.PEMPair
	caPEM    []byte
}

func newSandboxID(t *testing.T) executor.SandboxID {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return executor.SandboxID(hex.EncodeToString(b))
}

// testSettings are the operator settings of the tests' own Engine.
func testSettings() executor.Settings {
	return executor.Settings{
		Daemon:    executor.DaemonSpec{Image: local(seedjob.DaemonImage), Security: executor.SecurityCapabilities, ReadyTimeout: 60 * time.Second},
		BuildsDir: "/builds",
		CacheDir:  "/cache",
	}
}

// daemonProfile is a daemon security profile with its dind image.
type daemonProfile struct {
	name     string
	security executor.DaemonSecurity
	image    string
}

// runnableProfiles are the daemon profiles that run on the tests' Engine:
// "privileged" cannot (--privileged asks for CAP_SYS_RESOURCE, which is
// not in the host's bounding set).
var runnableProfiles = []daemonProfile{
	{"capabilities", executor.SecurityCapabilities, seedjob.DaemonImage},
	{"rootless", executor.SecurityRootless, seedjob.RootlessDaemonImage},
}

// settings are testSettings with the profile and its image (the rootless
// profile places the data root at its image's own; nothing else differs).
func (p daemonProfile) settings() executor.Settings {
	s := testSettings()
	s.Daemon.Security, s.Daemon.Image = p.security, local(p.image)
	return s
}

func sandboxSpec(id executor.Identity, log io.Writer) executor.Spec {
	return executor.Spec{
		Identity:     id,
		BuildImage:   local(seedjob.JobImage),
		HelperImage:  local(seedjob.HelperImage),
		CertLifetime: time.Hour,
		Log:          log,
	}
}

// local is an image that is only ever taken from the Engine.
func local(name string) executor.ImageRef {
	return executor.ImageRef{Name: name, Pull: []executor.PullPolicy{executor.PullIfNotPresent}}
}

// prepareSandboxes prepares n sandboxes at once and tears them down when
// the test ends (registered before Prepare, so a failed one is removed too).
func prepareSandboxes(t *testing.T, engine *executor.Engine, n int) []*testSandbox {
	t.Helper()
	api := dockerAPI(t)
	boxes := make([]*testSandbox, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range boxes {
		id := executor.Identity{SandboxID: newSandboxID(t), JobID: newJobID(), ProjectID: 1}
		boxes[i] = &testSandbox{id: id}
		t.Cleanup(func() {
			if _, err := engine.Teardown(context.Background(), id.SandboxID, executor.TeardownOptions{By: "test"}); err != nil {
				t.Errorf("teardown %s: %v", id.SandboxID, err)
			}
			assertNothingLeft(t, executor.LabelSandbox, string(id.SandboxID))
		})
		wg.Go(func() {
			var log bytes.Buffer
			if _, err := engine.Prepare(context.Background(), sandboxSpec(id, &log)); err != nil {
				errs[i] = fmt.Errorf("prepare %s: %w\n%s", id.SandboxID, err, log.String())
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, b := range boxes {
		inspect, err := api.ContainerInspect(context.Background(), b.id.Name(executor.RoleDaemon), client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b.daemonIP = inspect.Container.NetworkSettings.Networks[b.id.Name(executor.RoleNetwork)].IPAddress.String()
		files := copyFrom(t, api, b.id.Name(executor.RoleBuild), executor.ClientCertDir)
		b.caPEM, b.certs = files["ca.pem"], tlsca.PEMPair{Cert: files["cert.pem"], Key: files["key.pem"]}
	}
	return boxes
}

// copyFrom reads the regular files of a directory in a container.
func copyFrom(t *testing.T, api *client.Client, container, dir string) map[string][]byte {
	t.Helper()
	files, err := containerfs.ReadFiles(context.Background(), api, container, dir)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func connect(t *testing.T) *executor.Engine {
	t.Helper()
	return connectWith(t, testSettings())
}

// connectProfile connects with the settings of a daemon profile, whose
// image must be on the Engine.
func connectProfile(t *testing.T, p daemonProfile) *executor.Engine {
	t.Helper()
	if _, err := dockerAPI(t).ImageInspect(context.Background(), p.image); err != nil {
		t.Fatalf("image %s is missing (%v): run integration/images/build.sh", p.image, err)
	}
	return connectWith(t, p.settings())
}

func connectWith(t *testing.T, settings executor.Settings) *executor.Engine {
	t.Helper()
	engine, err := executor.Connect(executor.Options{Settings: settings, Log: logrus.New()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	return engine
}

// execIn runs a shell snippet in a sandbox container and returns its exit
// code and combined output.
func execIn(t *testing.T, engine *executor.Engine, id executor.Identity, role executor.Role, script string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	res, err := engine.Exec(context.Background(), id.SandboxID, executor.ExecOptions{Role: role, Script: strings.NewReader(script), Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatalf("exec in %s: %v", role, err)
	}
	return res.ExitCode, out.String()
}

// Each job's daemon answers only a client holding that job's certificate,
// and one job's containers cannot even reach another job's daemon, with
// each daemon profile that runs here.
func TestSandboxDaemonsAnswerOnlyTheirOwnJob(t *testing.T) {
	t.Parallel()
	for _, p := range runnableProfiles {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			engine := connectProfile(t, p)
			boxes := prepareSandboxes(t, engine, 2)
			a, b := boxes[0], boxes[1]

			t.Run("from the host", func(t *testing.T) {
				noCert := tlsca.PEMPair{}
				cases := []struct {
					name   string
					caPEM  []byte
					client tlsca.PEMPair
					wantOK bool
				}{
					{"own certificate", a.caPEM, a.certs, true},
					{"no client certificate", a.caPEM, noCert, false},
					{"another job's certificate", a.caPEM, b.certs, false},
				}
				for _, tc := range cases {
					t.Run(tc.name, func(t *testing.T) {
						err := pingDaemon(a.daemonIP, tc.caPEM, tc.client)
						if tc.wantOK && err != nil {
							t.Fatalf("want /_ping answered, got %v", err)
						}
						if !tc.wantOK && err == nil {
							t.Fatal("the daemon answered a client without this job's certificate")
						}
					})
				}
			})

			t.Run("from the build container", func(t *testing.T) {
				cases := []scriptCase{
					{"own daemon with the job's certificate", "docker version --format 'server {{.Server.Version}}'", 0, "server "},
					{"own daemon with the certificate, raw", "curl -sS --max-time 10 --cacert /certs/client/ca.pem --cert /certs/client/cert.pem --key /certs/client/key.pem https://docker:2376/_ping", 0, "OK"},
					{"own daemon without a certificate", "curl -sS --max-time 10 --cacert /certs/client/ca.pem https://docker:2376/_ping", anyFailure, ""},
					// 124: timeout(1) gave up, the packets were dropped between the job networks.
					{"another job's daemon, TCP", fmt.Sprintf("timeout 3 bash -c 'echo > /dev/tcp/%s/2376'", b.daemonIP), 124, ""},
					{"another job's daemon, with this job's certificate", fmt.Sprintf("timeout 3 docker -H tcp://%s:2376 version", b.daemonIP), anyFailure, ""},
					{"client key readable by its owner only", "stat -c '%a %U' /certs/client/key.pem", 0, "600 root"},
					{"no engine socket", "test ! -e /var/run/docker.sock", 0, ""},
				}
				runScriptCases(t, engine, a.id, executor.RoleBuild, cases)
			})

			t.Run("build container is unprivileged", func(t *testing.T) {
				api := dockerAPI(t)
				for _, role := range []executor.Role{executor.RoleBuild, executor.RoleHelper} {
					res, err := api.ContainerInspect(context.Background(), a.id.Name(role), client.ContainerInspectOptions{})
					if err != nil {
						t.Fatal(err)
					}
					h := res.Container.HostConfig
					if h.Privileged || len(h.CapAdd) > 0 {
						t.Errorf("%s container: privileged=%v capadd=%v", role, h.Privileged, h.CapAdd)
					}
					for _, m := range res.Container.Mounts {
						if strings.Contains(m.Source, "docker.sock") {
							t.Errorf("%s container mounts the engine socket", role)
						}
					}
				}
			})
		})
	}
}

const anyFailure = -1

// scriptCase is a shell snippet run in a sandbox container, the exit code
// it must end with (anyFailure: any non-zero) and text its output holds.
type scriptCase struct {
	name     string
	script   string
	wantCode int
	wantOut  string
}

// runScriptCases runs each case in role's container of sandbox id, as a
// subtest.
func runScriptCases(t *testing.T, engine *executor.Engine, id executor.Identity, role executor.Role, cases []scriptCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := execIn(t, engine, id, role, tc.script)
			if (tc.wantCode == anyFailure && code == 0) || (tc.wantCode != anyFailure && code != tc.wantCode) {
				t.Fatalf("exit code %d, want %d (-1: any failure); output: %s", code, tc.wantCode, out)
			}
			if !strings.Contains(out, tc.wantOut) {
				t.Errorf("output %q lacks %q", out, tc.wantOut)
			}
		})
	}
}

// pingDaemon calls /_ping on a sandbox daemon from the host over TLS.
func pingDaemon(ip string, caPEM []byte, pair tlsca.PEMPair) error {
	var cfg *tls.Config
	if pair.Cert == nil {
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(caPEM)
		cfg = &tls.Config{RootCAs: roots, ServerName: tlsca.DaemonServerName}
	} else {
		var err error
		if cfg, err = tlsca.ClientTLSConfig(caPEM, pair); err != nil {
			return err
		}
	}
	httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
	resp, err := httpClient.Get("https://" + ip + ":2376/_ping")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// Containers a job starts on its own daemon live under the daemon
// container's cgroup, so the sandbox's limits bound them too, with each
// daemon profile that runs here. Checked from the host for both: a
// long-lived container of the job's daemon, found in the host's /proc by
// its command line, is in the daemon container's memory cgroup or below
// it. With the capabilities profile the host's cgroup tree is mounted in
// the daemon container, and without the nested parent its containers
// would land beside it; a container of the job says so itself too
// (/docker/<id>/inner/). With the rootless profile the inner dockerd runs
// with cgroup driver none in rootlesskit's own cgroup namespace, so only
// the host sees where its containers are.
func TestJobContainersNestUnderTheDaemonsCgroup(t *testing.T) {
	t.Parallel()
	for _, p := range runnableProfiles {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			engine := connectProfile(t, p)
			box := prepareSandboxes(t, engine, 1)[0]
			res, err := dockerAPI(t).ContainerInspect(context.Background(), box.id.Name(executor.RoleDaemon), client.ContainerInspectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			daemonCgroup := "/docker/" + res.Container.ID
			marker := strconv.FormatInt(newJobID(), 10) // sleep's argument: a number, unique enough
			// Removed before the sandbox is torn down (cleanups run last
			// registered first), also when a check below fails.
			t.Cleanup(func() {
				const remove = "docker rm -f sleeper >/dev/null 2>&1; ! docker container inspect sleeper >/dev/null 2>&1"
				if code, out := execIn(t, engine, box.id, executor.RoleBuild, remove); code != 0 {
					t.Errorf("remove the job's container: exit %d: %s", code, out)
				}
				if proc, ok := findHostProcess("/bin/busybox", "sleep", marker); ok {
					t.Errorf("the job's container's process %d is still running after its removal", proc.pid)
				}
			})
			script := `set -e
mkdir -p /tmp/tiny && cd /tmp/tiny && cp /bin/busybox .
printf 'FROM scratch\nCOPY busybox /bin/busybox\n' > Dockerfile
docker build -q -t tiny . >/dev/null
docker run -d --name sleeper tiny /bin/busybox sleep ` + marker + ` >/dev/null
docker exec sleeper /bin/busybox cat /proc/self/cgroup`
			code, out := execIn(t, engine, box.id, executor.RoleBuild, script)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, out)
			}

			proc, ok := findHostProcess("/bin/busybox", "sleep", marker)
			if !ok {
				t.Fatalf("no process of the host runs the job's container (/bin/busybox sleep %s)", marker)
			}
			cgroup, err := hostMemoryCgroup(proc.pid)
			if err != nil {
				t.Fatal(err)
			}
			if cgroup != daemonCgroup && !strings.HasPrefix(cgroup, daemonCgroup+"/") {
				t.Errorf("the job's container (host pid %d) is in memory cgroup %s, not under the daemon container's %s", proc.pid, cgroup, daemonCgroup)
			} else {
				t.Logf("the job's container (host pid %d) is in memory cgroup %s", proc.pid, cgroup)
			}

			if p.security != executor.SecurityCapabilities {
				return
			}
			want := daemonCgroup + "/inner/"
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, ":memory:") && !strings.Contains(line, want) {
					t.Errorf("the job's container says it is in memory cgroup %q, not under the daemon's %s", line, want)
				}
			}
			if !strings.Contains(out, ":memory:") {
				t.Fatalf("no memory cgroup line in %q", out)
			}
		})
	}
}

// hostMemoryCgroup is the memory cgroup of a process of the host: the
// memory controller's path on cgroup v1, the unified path on v2.
func hostMemoryCgroup(pid int) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", err
	}
	unified := ""
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.SplitN(line, ":", 3)
		if len(fields) != 3 {
			continue
		}
		if slices.Contains(strings.Split(fields[1], ","), "memory") {
			return fields[2], nil
		}
		if fields[0] == "0" && fields[1] == "" {
			unified = fields[2]
		}
	}
	if unified == "" {
		return "", fmt.Errorf("no memory cgroup for process %d in %q", pid, data)
	}
	return unified, nil
}
