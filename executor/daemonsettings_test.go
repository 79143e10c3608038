package executor

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/sirupsen/logrus"
)

// daemonTable is a plan with every [daemon] setting.
func daemonTable() plan {
	p := testSpec()
	p.Daemon.NetworkMTU = 1400
	p.Daemon.RegistryMirrors = []string{"https://mirror.example.com", "http://mirror:5000"}
	p.Daemon.InsecureRegistries = []string{"mirror:5000", "10.0.0.0/8"}
	p.Daemon.RegistryCAs = map[string][]byte{"reg.example.com:5000": []byte("CA 1"), "10.0.0.5": []byte("CA 2")}
	p.Daemon.Proxy = Proxy{HTTP: "http://proxy:3128", HTTPS: "http://u:p@proxy:3128", No: "localhost,docker"}
	p.Daemon.DNS = []string{"10.0.0.2", "fd00::53"}
	p.Daemon.Features = map[string]bool{"containerd-snapshotter": true, "buildkit": false}
	p.ExtraHosts = []string{"gitlab.internal:10.0.0.7", "gw:host-gateway"}
	return p
}

func TestDaemonContainerTakesTheDaemonTable(t *testing.T) {
	c := daemonContainer(daemonTable(), "net", 1450, "v", []string{"dockerd-entrypoint.sh"})
	wantCmd := []string{
		"--mtu=1400",
		"--default-network-opt=bridge=com.docker.network.driver.mtu=1400",
		"--registry-mirror=https://mirror.example.com",
		"--registry-mirror=http://mirror:5000",
		"--insecure-registry=mirror:5000",
		"--insecure-registry=10.0.0.0/8",
		"--dns=10.0.0.2",
		"--dns=fd00::53",
		"--config-file=/etc/dind-executor/daemon.json",
	}
	if !slices.Equal(c.config.Cmd, wantCmd) {
		t.Errorf("cmd =\n%q\nwant\n%q", c.config.Cmd, wantCmd)
	}
	for _, want := range []string{
		"HTTP_PROXY=http://proxy:3128", "http_proxy=http://proxy:3128",
		"HTTPS_PROXY=http://u:p@proxy:3128", "https_proxy=http://u:p@proxy:3128",
		"NO_PROXY=localhost,docker", "no_proxy=localhost,docker",
		"DOCKER_TLS_CERTDIR=/certs",
	} {
		if !slices.Contains(c.config.Env, want) {
			t.Errorf("env %q lacks %s", c.config.Env, want)
		}
	}
	if !slices.Equal(c.host.ExtraHosts, []string{"gitlab.internal:10.0.0.7", "gw:host-gateway"}) {
		t.Errorf("daemon extra hosts = %v", c.host.ExtraHosts)
	}
}

// Without a [daemon] table the daemon gets nothing but the MTU flags: no
// proxy variables, no daemon.json (the image's own stays in force), no
// extra hosts.
func TestDaemonContainerWithoutTheDaemonTable(t *testing.T) {
	c := daemonContainer(testSpec(), "net", 1450, "v", []string{"dockerd-entrypoint.sh"})
	if want := []string{"--mtu=1450", "--default-network-opt=bridge=com.docker.network.driver.mtu=1450"}; !slices.Equal(c.config.Cmd, want) {
		t.Errorf("cmd = %q, want %q", c.config.Cmd, want)
	}
	for _, e := range c.config.Env {
		if strings.Contains(strings.ToLower(e), "proxy") {
			t.Errorf("proxy variable without a proxy setting: %s", e)
		}
	}
	if c.host.ExtraHosts != nil {
		t.Errorf("extra hosts %v", c.host.ExtraHosts)
	}
	files, err := daemonSettingFiles(testSpec().Daemon)
	if err != nil || len(files) != 0 {
		t.Errorf("files without settings: %v, %v", files, err)
	}
}

// The networks a job creates in its daemon take network_mtu, else the
// sandbox network's MTU, and never Docker's 1500 default.
func TestInnerNetworkMTU(t *testing.T) {
	for _, tc := range []struct{ networkMTU, sandboxMTU, want int }{{0, 1450, 1450}, {0, 1500, 1500}, {1400, 1450, 1400}, {9000, 9000, 9000}} {
		d := DaemonSpec{NetworkMTU: tc.networkMTU}
		args := daemonArgs(d, DaemonRequest{}, tc.sandboxMTU)
		want := []string{"--mtu=" + itoa(tc.want), "--default-network-opt=bridge=com.docker.network.driver.mtu=" + itoa(tc.want)}
		if !slices.Equal(args, want) {
			t.Errorf("network_mtu %d, sandbox %d: args %q, want %q", tc.networkMTU, tc.sandboxMTU, args, want)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestJobContainersGetExtraHosts(t *testing.T) {
	p := daemonTable()
	p.Services = []Service{{Image: ImageRef{Name: "pg:15"}}}
	for _, c := range []containerSpec{buildContainer(p, "net"), helperContainer(p, "net"), serviceContainer(p, "net", 0)} {
		if !slices.Equal(c.host.ExtraHosts, p.ExtraHosts) {
			t.Errorf("%s: extra hosts %v, want %v", c, c.host.ExtraHosts, p.ExtraHosts)
		}
		for _, e := range c.config.Env {
			if strings.Contains(strings.ToLower(e), "proxy") {
				t.Errorf("%s: the daemon's proxy reached a job container: %s", c, e)
			}
		}
	}
}

// Each registry's CA lands where dockerd looks for it, readable by all
// and beside no key; features go to the daemon.json the command line
// names.
func TestDaemonSettingFiles(t *testing.T) {
	files, err := daemonSettingFiles(daemonTable().Daemon)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range files {
		got[f.path] = string(f.data)
		if f.mode != 0o644 {
			t.Errorf("%s mode %o", f.path, f.mode)
		}
	}
	want := map[string]string{
		"/etc/docker/certs.d/10.0.0.5/ca.crt":             "CA 2",
		"/etc/docker/certs.d/reg.example.com:5000/ca.crt": "CA 1",
		"/etc/dind-executor/daemon.json":                  `{"features":{"buildkit":false,"containerd-snapshotter":true}}`,
	}
	if !maps.Equal(got, want) {
		t.Errorf("files =\n%v\nwant\n%v", got, want)
	}
	buf, err := certArchive(files)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	for _, name := range []string{"etc/", "etc/docker/", "etc/docker/certs.d/", "etc/docker/certs.d/reg.example.com:5000/", "etc/docker/certs.d/reg.example.com:5000/ca.crt"} {
		if !slices.Contains(names, name) {
			t.Errorf("archive lacks %s: %v", name, names)
		}
	}

	for _, bad := range []string{"", "..", "../../etc", "a/b", "a\x00"} {
		if _, err := daemonSettingFiles(DaemonSpec{RegistryCAs: map[string][]byte{bad: []byte("x")}}); err == nil {
			t.Errorf("registry %q: a path out of certs.d was accepted", bad)
		}
	}
}

// A pooled daemon is handed only to a job whose settings made it: every
// [daemon] setting is part of the pool's key, maps count by content and
// lists by order; with none set the key is the one pools had before the
// table existed.
func TestPoolKeyCoversTheDaemonTable(t *testing.T) {
	base := daemonTable().Settings
	changes := map[string]func(*Settings){
		"network_mtu":       func(s *Settings) { s.Daemon.NetworkMTU = 1300 },
		"network_mtu unset": func(s *Settings) { s.Daemon.NetworkMTU = 0 },
		"a mirror more": func(s *Settings) {
			s.Daemon.RegistryMirrors = append(slices.Clone(s.Daemon.RegistryMirrors), "https://m2")
		},
		"mirrors reordered": func(s *Settings) {
			s.Daemon.RegistryMirrors = []string{"http://mirror:5000", "https://mirror.example.com"}
		},
		"insecure registries": func(s *Settings) { s.Daemon.InsecureRegistries = nil },
		"a CA's content": func(s *Settings) {
			s.Daemon.RegistryCAs = map[string][]byte{"reg.example.com:5000": []byte("CA 3"), "10.0.0.5": []byte("CA 2")}
		},
		"a CA for another host": func(s *Settings) {
			s.Daemon.RegistryCAs = map[string][]byte{"reg.example.com:5001": []byte("CA 1"), "10.0.0.5": []byte("CA 2")}
		},
		"http proxy":  func(s *Settings) { s.Daemon.Proxy.HTTP = "" },
		"https proxy": func(s *Settings) { s.Daemon.Proxy.HTTPS = "http://proxy:3129" },
		"no proxy":    func(s *Settings) { s.Daemon.Proxy.No = "localhost" },
		"dns":         func(s *Settings) { s.Daemon.DNS = []string{"10.0.0.3"} },
		"extra hosts": func(s *Settings) { s.ExtraHosts = append(slices.Clone(s.ExtraHosts), "x:127.0.0.1") },
		"a feature turned off": func(s *Settings) {
			s.Daemon.Features = map[string]bool{"containerd-snapshotter": false, "buildkit": false}
		},
		"a feature left out":   func(s *Settings) { s.Daemon.Features = map[string]bool{"containerd-snapshotter": true} },
		"the security profile": func(s *Settings) { s.Daemon.Security = SecurityCapabilities },
		"the sandbox MTU":      func(s *Settings) { s.Daemon.MTU = 1450 },
		"the daemon image":     func(s *Settings) { s.Daemon.Image.Name = "dind:other" },
		"limits":               func(s *Settings) { s.Limits.Pids = 1 },
		"the whole table cleared": func(s *Settings) {
			s.Daemon = DaemonSpec{Image: s.Daemon.Image, Security: s.Daemon.Security}
			s.ExtraHosts = nil
		},
	}
	seen := map[string]string{base.PoolKey(): "base"}
	for name, change := range changes {
		s := daemonTable().Settings
		change(&s)
		key := s.PoolKey()
		if other, dup := seen[key]; dup {
			t.Errorf("%s: pool key %s, the same as %s: a daemon made the other way would be handed out", name, key, other)
		}
		seen[key] = name
	}

	// Equal settings, however built, are one pool.
	same := daemonTable().Settings
	same.Daemon.RegistryCAs = map[string][]byte{"10.0.0.5": []byte("CA 2"), "reg.example.com:5000": []byte("CA 1")}
	same.Daemon.Features = map[string]bool{"buildkit": false, "containerd-snapshotter": true}
	same.Daemon.ReadyTimeout = 99 // not how the daemon is made
	same.PoolSize = 7
	if same.PoolKey() != base.PoolKey() {
		t.Errorf("equal settings give two pool keys")
	}

	// Empty lists and maps are no settings: the key of a config without a
	// [daemon] table is unchanged.
	plain := testSpec().Settings
	empty := plain
	empty.Daemon.RegistryMirrors, empty.Daemon.RegistryCAs, empty.Daemon.Features, empty.ExtraHosts = []string{}, map[string][]byte{}, map[string]bool{}, []string{}
	const before = "908ec638c2c0" // sha256("dind:test||privileged|0|1500000000|1073741824|512")[:6]
	if plain.PoolKey() != before || empty.PoolKey() != before {
		t.Errorf("pool key without a daemon table = %s / %s, want %s as before the table existed", plain.PoolKey(), empty.PoolKey(), before)
	}
}

// fakePoolEngine answers the container list the way the Engine does, label
// filters included, with the pooled daemons it holds; any other call fails
// the test (nothing may be claimed).
func fakePoolEngine(t *testing.T, daemons []container.Summary) *docker {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/_ping") {
			w.Header().Set("Api-Version", "1.41")
			return
		}
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/containers/json") {
			t.Errorf("unexpected Engine call %s %s", r.Method, r.URL.Path)
			http.Error(w, "unexpected", http.StatusInternalServerError)
			return
		}
		var filters map[string]map[string]bool
		if err := json.Unmarshal([]byte(r.URL.Query().Get("filters")), &filters); err != nil {
			t.Errorf("filters %q: %v", r.URL.Query().Get("filters"), err)
		}
		var out []container.Summary
		for _, c := range daemons {
			match := true
			for label := range filters["label"] {
				k, v, _ := strings.Cut(label, "=")
				if got, ok := c.Labels[k]; !ok || got != v {
					match = false
				}
			}
			if match {
				out = append(out, c)
			}
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	api, err := client.New(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithAPIVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	return &docker{api: api, log: logrus.New()}
}

func TestPooledDaemonOfOtherDaemonSettingsIsNeverClaimed(t *testing.T) {
	made := daemonTable()
	id := SandboxID("00112233445566aa")
	labels := poolLabels(Identity{SandboxID: id}, made.PoolKey())(RoleDaemon)
	e := fakePoolEngine(t, []container.Summary{{
		ID: "c1", Names: []string{"/" + id.Name(RoleDaemon)}, Labels: labels, State: "running",
		Created: time.Now().Unix(),
	}})
	ctx := context.Background()

	// The same settings see the daemon as ready.
	if ready, err := e.readyPooled(ctx, made.PoolKey()); err != nil || len(ready) != 1 {
		t.Fatalf("the pool's own settings: %d ready, %v", len(ready), err)
	}
	// A job whose [daemon] settings differ in any way finds nothing to
	// claim, and makes no claim.
	for name, change := range map[string]func(*plan){
		"another mirror":    func(p *plan) { p.Daemon.RegistryMirrors = []string{"https://other.example.com"} },
		"another CA":        func(p *plan) { p.Daemon.RegistryCAs = map[string][]byte{"reg.example.com:5000": []byte("new CA")} },
		"another proxy":     func(p *plan) { p.Daemon.Proxy = Proxy{} },
		"other extra hosts": func(p *plan) { p.ExtraHosts = nil },
		"network mtu":       func(p *plan) { p.Daemon.NetworkMTU = 0 },
		"no daemon table":   func(p *plan) { *p = testSpec() },
	} {
		t.Run(name, func(t *testing.T) {
			job := daemonTable()
			change(&job)
			d, err := e.claimPooled(ctx, job)
			if err != nil || d != nil {
				t.Errorf("claimed %+v (%v): a daemon made with other settings was handed out", d, err)
			}
		})
	}
}
