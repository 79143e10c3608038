package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// The [daemon] table, end to end: every network these tests use is the
// job's own (services on the job network, networks inside the job's
// daemon) or loopback; Docker Hub's names are pointed at the daemon
// container's loopback, so nothing here can leave the machine.

// hubOnLoopback sends Docker Hub's names to the daemon container's own
// loopback, where nothing listens: a pull that is not served by a mirror
// fails at once, and never goes out.
const hubOnLoopback = `"registry-1.docker.io:127.0.0.1", "index.docker.io:127.0.0.1", "auth.docker.io:127.0.0.1", "docker.io:127.0.0.1"`

// registryImage builds a FROM scratch image that runs the test registry
// on port 5000 with args, with files beside it in /, for a job service.
func registryImage(t *testing.T, files map[string][]byte, args ...string) string {
	t.Helper()
	binary, err := os.ReadFile(filepath.Join(testRegistryBinary(t), "testregistry"))
	if err != nil {
		t.Fatal(err)
	}
	entrypoint, _ := json.Marshal(append([]string{"/registry"}, args...))
	all := map[string][]byte{
		"Dockerfile": fmt.Appendf(nil, "FROM scratch\nCOPY . /\nEXPOSE 5000\nENTRYPOINT %s\n", entrypoint),
		"registry":   binary,
	}
	for name, data := range files {
		all[name] = data
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(all)) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(all[name]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(all[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buildContext(t, &buf)
}

// innerImage is the job's script lines that build a busybox image tagged
// tag inside the job's daemon, printing message when run. Markers the
// tests look for in the job log are echoed in words apart for the same
// reason: echo "PUSH" "OK".
func innerImage(tag, message string) []string {
	return []string{
		`mkdir -p /tmp/img && cp /bin/busybox /tmp/img/`,
		// The words apart, so that the script's echo in the job log never
		// shows the message itself.
		fmt.Sprintf(`printf 'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "echo", "%s"]\n' > /tmp/img/Dockerfile`,
			strings.Join(strings.Fields(message), `", "`)),
		"docker build -q -t " + tag + " /tmp/img",
	}
}

// daemonConfig is the seed config with a [daemon] table.
func daemonConfig(table string) string {
	return seedConfig() + "\n[daemon]\n" + table
}

// runDaemonJob runs job under config and returns its plain job log; the
// job must succeed (its script tolerates the failures under test) and
// leave nothing.
func runDaemonJob(t *testing.T, config string, job runner.Job, opts ...runner.RunOption) string {
	t.Helper()
	e := newEmulator(t, config)
	e.PrepareAttempts = 1
	res := runJob(t, e, job, opts...)
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	assertJobLeftNothing(t, job.ID)
	return runner.PlainText(res.Log)
}

func assertLog(t *testing.T, log string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(log, w) {
			t.Errorf("job log lacks %q", w)
		}
	}
}

func assertNotInLog(t *testing.T, log string, unwanted ...string) {
	t.Helper()
	for _, u := range unwanted {
		if strings.Contains(log, u) {
			t.Errorf("job log has %q", u)
		}
	}
}

// A pull of a Docker Hub image name succeeds only because registry_mirrors
// points the daemon at a registry that holds it: a job service on the job
// network, which the daemon reaches by name (insecure_registries lets the
// job push to it over HTTP first). Without the mirror the same pull goes
// to Docker Hub's name, which extra_hosts sends to the daemon's loopback,
// and fails.
func TestDaemonPullsThroughARegistryMirror(t *testing.T) {
	t.Parallel()
	mirror := registryImage(t, nil)
	script := append(innerImage("mirror:5000/library/dind-mirror-test:1", "served by the mirror"),
		"docker push -q mirror:5000/library/dind-mirror-test:1",
		"docker rmi mirror:5000/library/dind-mirror-test:1",
		`docker info --format 'mirrors {{json .RegistryConfig.Mirrors}}'`,
		`if docker pull docker.io/library/dind-mirror-test:1; then docker run --rm dind-mirror-test:1; else echo "PULL" "FAILED"; fi`,
	)
	for _, tc := range []struct {
		name, table    string
		want, unwanted []string
	}{
		{"with the mirror", `registry_mirrors = ["http://mirror:5000"]` + "\n",
			[]string{`mirrors ["http://mirror:5000/"]`, "Downloaded newer image for dind-mirror-test:1", "served by the mirror"},
			[]string{"PULL FAILED"}},
		{"without it", "",
			[]string{"mirrors null", "PULL FAILED", "registry-1.docker.io", "dial tcp 127.0.0.1:443"},
			[]string{"served by the mirror"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := simpleJob(script...)
			job.Services = []runner.Image{{Name: mirror, Alias: "mirror"}}
			log := runDaemonJob(t, daemonConfig(tc.table+`insecure_registries = ["mirror:5000"]`+"\nextra_hosts = ["+hubOnLoopback+"]\n"), job)
			assertLog(t, log, tc.want...)
			assertNotInLog(t, log, tc.unwanted...)
		})
	}
}

// testRegistryPKI makes a CA and a server certificate for host, signed by
// it, in PEM.
func testRegistryPKI(t *testing.T, host string) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dind-executor test registry CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// A registry whose certificate is signed by a CA of its own accepts a push
// only from a daemon given that CA in registry_certs; without it the push
// fails on the certificate. The CA reaches the daemon only through the
// Engine API, at /etc/docker/certs.d/<registry>/ca.crt.
func TestDaemonTrustsARegistryCAOnlyWhenConfigured(t *testing.T) {
	t.Parallel()
	caPEM, certPEM, keyPEM := testRegistryPKI(t, "tlsreg")
	registry := registryImage(t, map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM}, ":5000", "/cert.pem", "/key.pem")
	caFile := filepath.Join(t.TempDir(), "registry-ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	script := append(innerImage("tlsreg:5000/app:1", "pushed over TLS"),
		`if docker push tlsreg:5000/app:1; then echo "PUSH" "OK"; else echo "PUSH" "FAILED"; fi`,
		// A bind in the job's daemon shows the daemon container's files.
		`docker run --rm -v /etc/docker/certs.d:/certs.d tlsreg:5000/app:1 /bin/busybox find /certs.d -type f`,
		`docker rmi tlsreg:5000/app:1`,
		`if docker pull -q tlsreg:5000/app:1; then docker run --rm tlsreg:5000/app:1; else echo "PULL" "FAILED"; fi`,
	)
	for _, tc := range []struct {
		name, table    string
		want, unwanted []string
	}{
		{"with the CA", fmt.Sprintf("[daemon.registry_certs]\n%q = %q\n", "tlsreg:5000", caFile),
			[]string{"PUSH OK", "/certs.d/tlsreg:5000/ca.crt", "pushed over TLS"}, []string{"PUSH FAILED", "PULL FAILED", "x509"}},
		{"without it", "",
			[]string{"PUSH FAILED", "x509: certificate signed by unknown authority", "PULL FAILED"}, []string{"PUSH OK", "ca.crt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := simpleJob(script...)
			job.Services = []runner.Image{{Name: registry, Alias: "tlsreg"}}
			log := runDaemonJob(t, daemonConfig(tc.table), job)
			assertLog(t, log, tc.want...)
			assertNotInLog(t, log, tc.unwanted...)
		})
	}
}

// extra_hosts lines reach /etc/hosts of the build, helper, service and
// daemon containers, and the daemon resolves by them. The proxy variables
// reach the daemon only, which bypasses the proxy for no_proxy's names;
// features reach dockerd.
func TestExtraHostsReachEveryContainerAndTheDaemon(t *testing.T) {
	t.Parallel()
	const line = "127.0.0.7\tdind-extra.test"
	job := simpleJob(
		"getent hosts dind-extra.test | tr -s ' '",
		"grep -F 'dind-extra.test' /etc/hosts",
		// dockerd resolves the name to its container's loopback, where
		// nothing listens on 5000.
		`docker pull dind-extra.test:5000/app:1 2>&1 | tee /tmp/pull.log || true`,
		`grep -q 'dial tcp 127.0.0.7:5000' /tmp/pull.log && echo "DAEMON RESOLVED" "dind-extra.test"`,
		// features reach dockerd through its daemon.json: without BuildKit
		// it announces the classic builder.
		`curl -sS -o /dev/null -D - --cacert "$DOCKER_CERT_PATH/ca.pem" --cert "$DOCKER_CERT_PATH/cert.pem" --key "$DOCKER_CERT_PATH/key.pem" https://docker:2376/_ping | grep -i '^builder-version'`,
	)
	job.Services = []runner.Image{{Name: seedjob.JobImage, Alias: "svc", Command: []string{"sleep", "3600"}}}

	// While the job runs, read /etc/hosts and the environment of each of
	// its containers from the Engine.
	api := dockerAPI(t)
	var mu sync.Mutex
	hosts := map[string]string{}
	env := map[string][]string{}
	inspect := func(x runner.Exec, _ int) {
		if x.Stage != runner.StageBuildScript {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		list, err := api.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.
			Add("label", executor.LabelJobID+"="+fmt.Sprint(job.ID))})
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, c := range list.Items {
			role := c.Labels[executor.LabelRole]
			hosts[role] = readContainerFile(ctx, t, api, c.ID, "/etc/hosts")
			res, err := api.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
			if err != nil {
				t.Error(err)
				continue
			}
			env[role] = res.Container.Config.Env
		}
	}
	log := runDaemonJob(t, daemonConfig(`extra_hosts = ["dind-extra.test:127.0.0.7", "dind-extra-v6.test:::1"]
http_proxy = "http://127.0.0.1:3128"
https_proxy = "http://127.0.0.1:3128"
no_proxy = "dind-extra.test"
features = { buildkit = false }
`), job, runner.OnExecStart(inspect))

	assertLog(t, log, "127.0.0.7 dind-extra.test", "DAEMON RESOLVED dind-extra.test", "Builder-Version: 1")
	mu.Lock()
	defer mu.Unlock()
	for _, role := range []string{"daemon", "build", "helper", "service"} {
		if !strings.Contains(hosts[role], line) || !strings.Contains(hosts[role], "::1\tdind-extra-v6.test") {
			t.Errorf("%s container's /etc/hosts lacks the extra hosts:\n%s", role, hosts[role])
		}
	}
	for _, want := range []string{"HTTP_PROXY=http://127.0.0.1:3128", "https_proxy=http://127.0.0.1:3128", "NO_PROXY=dind-extra.test"} {
		if !slices.Contains(env["daemon"], want) {
			t.Errorf("daemon env lacks %s: %q", want, env["daemon"])
		}
	}
	for _, role := range []string{"build", "helper", "service"} {
		for _, e := range env[role] {
			if strings.Contains(strings.ToLower(e), "_proxy=") {
				t.Errorf("the daemon's proxy reached the %s container: %s", role, e)
			}
		}
	}
}

// readContainerFile reads one small file out of a container.
func readContainerFile(ctx context.Context, t *testing.T, api *client.Client, id, path string) string {
	t.Helper()
	res, err := api.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: path})
	if err != nil {
		t.Errorf("read %s of %s: %v", path, id, err)
		return ""
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	if _, err := tr.Next(); err != nil {
		t.Errorf("read %s of %s: %v", path, id, err)
		return ""
	}
	data, err := io.ReadAll(io.LimitReader(tr, 1<<20))
	if err != nil {
		t.Errorf("read %s of %s: %v", path, id, err)
	}
	return string(data)
}

// A network the job creates in its daemon, and a container on it, get
// network_mtu, else the sandbox network's MTU: not Docker's 1500. The
// daemon's containers get the dns servers (a loopback address: nothing is
// resolved here).
func TestInnerNetworksTakeTheConfiguredMTU(t *testing.T) {
	t.Parallel()
	script := append(innerImage("mtu-probe:1", "probe"),
		"docker network create dind-mtu-test",
		`echo "network option mtu=$(docker network inspect dind-mtu-test --format '{{index .Options "com.docker.network.driver.mtu"}}')"`,
		`echo "container on it mtu=$(docker run --rm --network dind-mtu-test mtu-probe:1 /bin/busybox cat /sys/class/net/eth0/mtu)"`,
		`echo "default bridge mtu=$(docker run --rm mtu-probe:1 /bin/busybox cat /sys/class/net/eth0/mtu)"`,
		// dns: the name servers of the daemon's containers (on its default
		// bridge they are written as given).
		`docker run --rm mtu-probe:1 /bin/busybox cat /etc/resolv.conf`,
	)
	for _, tc := range []struct {
		name, sandbox, table string
		want                 int
	}{
		{"network_mtu", "", "network_mtu = 1400\ndns = [\"127.0.0.53\"]\n", 1400},
		{"the sandbox's MTU when unset", "mtu = 1450\n", "dns = [\"127.0.0.53\"]\n", 1450},
	} {
		t.Run(tc.name, func(t *testing.T) {
			config := strings.Replace(daemonConfig(tc.table), "[sandbox]\n", "[sandbox]\n"+tc.sandbox, 1)
			log := runDaemonJob(t, config, simpleJob(script...))
			assertLog(t, log,
				fmt.Sprintf("network option mtu=%d\n", tc.want),
				fmt.Sprintf("container on it mtu=%d\n", tc.want),
				fmt.Sprintf("default bridge mtu=%d\n", tc.want),
				"nameserver 127.0.0.53")
		})
	}
}
