package executor

import (
	"archive/tar"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"gitlab.com/dind-executor/dind-executor/executor/tlsca"
)

func testSpec() plan {
	return plan{
		Settings: Settings{
			Daemon:     DaemonSpec{Image: ImageRef{Name: "dind:test"}, Security: SecurityPrivileged},
			BuildsDir:  "/builds",
			CacheDir:   "/cache",
			ExtraBinds: []string{"/srv/git:/srv/git:ro"},
			Limits:     Limits{NanoCPUs: 1_500_000_000, MemoryBytes: 1 << 30, Pids: 512},
		},
		Spec: Spec{
			Identity:    Identity{SandboxID: "0123456789abcdef", JobID: 7, ProjectID: 42, PipelineID: 900, ProjectPath: "g/a"},
			BuildImage:  ImageRef{Name: "job:test"},
			HelperImage: ImageRef{Name: "helper:test"},
		},
	}
}

func TestDaemonContainerSecurityProfiles(t *testing.T) {
	cases := []struct {
		security       DaemonSecurity
		wantPrivileged bool
		wantCapAdd     []string
		wantCgroupBind bool
	}{
		{SecurityPrivileged, true, nil, false},
		{SecurityCapabilities, false, []string{"ALL"}, true},
	}
	for _, tc := range cases {
		t.Run(string(tc.security), func(t *testing.T) {
			s := testSpec()
			s.Daemon.Security = tc.security
			c := daemonContainer(s, "net", 1450, "dataroot-volume", []string{"dockerd-entrypoint.sh"})
			if c.host.Privileged != tc.wantPrivileged {
				t.Errorf("privileged = %v, want %v", c.host.Privileged, tc.wantPrivileged)
			}
			if !slices.Equal(c.host.CapAdd, tc.wantCapAdd) {
				t.Errorf("CapAdd = %v, want %v", c.host.CapAdd, tc.wantCapAdd)
			}
			if got := slices.Contains(c.host.Binds, "/sys/fs/cgroup:/sys/fs/cgroup:rw"); got != tc.wantCgroupBind {
				t.Errorf("cgroup bind = %v, want %v", got, tc.wantCgroupBind)
			}
			if tc.security == SecurityCapabilities && !slices.Equal(c.host.CapDrop, []string{"SYS_RESOURCE"}) {
				t.Errorf("CapDrop = %v, want SYS_RESOURCE", c.host.CapDrop)
			}
			if want := []string{"--mtu=1450", "--default-network-opt=bridge=com.docker.network.driver.mtu=1450"}; !slices.Equal(c.config.Cmd, want) {
				t.Errorf("cmd = %v, want the MTU flags only (the image's entrypoint adds the rest)", c.config.Cmd)
			}
			// The image's own entrypoint always runs, behind the wrapper;
			// only the capabilities profile nests the job's cgroups.
			ep := c.config.Entrypoint
			if len(ep) != 5 || ep[4] != "dockerd-entrypoint.sh" || !strings.Contains(ep[2], "--containerd=") {
				t.Errorf("entrypoint %q does not run the image's own behind the wrapper", ep)
			}
			wantNest := map[DaemonSecurity]string{SecurityPrivileged: "NEST_CGROUPS=0", SecurityCapabilities: "NEST_CGROUPS=1"}[tc.security]
			if !slices.Contains(c.config.Env, wantNest) {
				t.Errorf("env %v lacks %s", c.config.Env, wantNest)
			}
			if !slices.Equal(c.networking.EndpointsConfig["net"].Aliases, []string{"docker"}) {
				t.Errorf("daemon is not reachable as docker on the job network")
			}
			if !slices.Contains(c.config.Env, "DOCKER_TLS_CERTDIR=/certs") {
				t.Errorf("env %v lacks DOCKER_TLS_CERTDIR", c.config.Env)
			}
		})
	}
}

func TestJobContainersAreUnprivileged(t *testing.T) {
	s := testSpec()
	for _, c := range []containerSpec{buildContainer(s, "net"), helperContainer(s, "net")} {
		t.Run(string(c.role), func(t *testing.T) {
			h := c.host
			if h.Privileged || len(h.CapAdd) > 0 || len(h.SecurityOpt) > 0 || len(h.DeviceCgroupRules) > 0 {
				t.Errorf("elevated rights: privileged=%v capadd=%v secopt=%v devices=%v", h.Privileged, h.CapAdd, h.SecurityOpt, h.DeviceCgroupRules)
			}
			for _, b := range h.Binds {
				if strings.Contains(b, "docker.sock") {
					t.Errorf("engine socket mounted: %s", b)
				}
			}
			want := []string{"dind-0123456789abcdef-builds:/builds", "dind-0123456789abcdef-cache:/cache", "/srv/git:/srv/git:ro"}
			if !slices.Equal(h.Binds, want) {
				t.Errorf("binds = %v, want %v", h.Binds, want)
			}
			if h.NanoCPUs != 1_500_000_000 || h.Memory != 1<<30 || h.PidsLimit == nil || *h.PidsLimit != 512 {
				t.Errorf("limits not applied: %+v", h.Resources)
			}
			if c.config.Labels[LabelSandbox] != "0123456789abcdef" || c.config.Labels[LabelJobID] != "7" || c.config.Labels[LabelRole] != string(c.role) {
				t.Errorf("labels = %v", c.config.Labels)
			}
		})
	}
	env := buildContainer(s, "net").config.Env
	for _, want := range []string{"DOCKER_HOST=tcp://docker:2376", "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=/certs/client"} {
		if !slices.Contains(env, want) {
			t.Errorf("build env %v lacks %s", env, want)
		}
	}
}

func TestCertArchive(t *testing.T) {
	b, err := tlsca.New("0123456789abcdef", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for name, files := range map[string][]certFile{"daemon": daemonCertFiles(b), "client": clientCertFiles(b.CACert, b.Client)} {
		t.Run(name, func(t *testing.T) {
			buf, err := certArchive(files)
			if err != nil {
				t.Fatal(err)
			}
			modes := map[string]int64{}
			tr := tar.NewReader(buf)
			for {
				h, err := tr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				modes[h.Name] = h.Mode
			}
			for _, f := range files {
				mode, ok := modes[f.path[1:]]
				if !ok {
					t.Errorf("%s missing from archive", f.path)
					continue
				}
				wantMode := int64(0o644)
				if strings.HasSuffix(f.path, "key.pem") {
					wantMode = 0o600
				}
				if mode != wantMode {
					t.Errorf("%s mode %o, want %o", f.path, mode, wantMode)
				}
			}
			if _, ok := modes["certs/"]; !ok {
				t.Errorf("parent directory certs/ missing: %v", modes)
			}
		})
	}
	for _, f := range daemonCertFiles(b) {
		if f.path == "/certs/ca/key.pem" {
			t.Error("the CA key must never reach the daemon container")
		}
	}
}

func TestBuildContainerEntrypointAndUser(t *testing.T) {
	cases := []struct {
		name           string
		entrypoint     []string
		user           string
		wantEntrypoint []string
	}{
		{"image's own entrypoint wraps the command", nil, "", nil},
		{"entrypoint [\"\"] removes it", []string{""}, "", []string{""}},
		{"job entrypoint", []string{"/bin/tini", "--"}, "1000", []string{"/bin/tini", "--"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := testSpec()
			s.BuildEntrypoint, s.BuildUser = tc.entrypoint, tc.user
			c := buildContainer(s, "net")
			if !slices.Equal(c.config.Entrypoint, tc.wantEntrypoint) || (c.config.Entrypoint == nil) != (tc.wantEntrypoint == nil) {
				t.Errorf("entrypoint %q, want %q", c.config.Entrypoint, tc.wantEntrypoint)
			}
			if !slices.Equal(c.config.Cmd, []string{"sh", "-c", keepAlive}) {
				t.Errorf("cmd %q, want the keep-alive shell", c.config.Cmd)
			}
			if c.config.User != tc.user {
				t.Errorf("user %q, want %q", c.config.User, tc.user)
			}
		})
	}
}

func TestServiceContainer(t *testing.T) {
	s := testSpec()
	s.Services = []Service{{
		Image:   ImageRef{Name: "registry:5000/grp/pg:15"},
		Aliases: []string{"registry__grp__pg", "registry-grp-pg", "db"},
		Command: []string{"postgres", "-c", "fsync=off"},
		Env:     []string{"POSTGRES_PASSWORD=x"},
	}}
	c := serviceContainer(s, "net", 0)
	if c.name != "dind-0123456789abcdef-service-0" {
		t.Errorf("name %s", c.name)
	}
	if got := c.networking.EndpointsConfig["net"].Aliases; !slices.Equal(got, s.Services[0].Aliases) {
		t.Errorf("aliases %v", got)
	}
	if c.host.Privileged || len(c.host.Binds) > 0 {
		t.Errorf("service has rights or volumes: privileged=%v binds=%v", c.host.Privileged, c.host.Binds)
	}
	if c.config.Labels[LabelService] != "registry:5000/grp/pg:15" || c.config.Labels[LabelRole] != "service" || c.config.Labels[LabelSandbox] == "" {
		t.Errorf("labels %v", c.config.Labels)
	}
	if c.host.PidsLimit == nil || *c.host.PidsLimit != 512 {
		t.Error("limits not applied to the service")
	}
}

func TestCacheVolume(t *testing.T) {
	id := testSpec().Identity
	if got := id.CacheVolume(); got != "dind-0123456789abcdef-cache" {
		t.Errorf("sandbox cache volume %s", got)
	}
	id.ProjectKey = "abc123"
	if got := id.CacheVolume(); got != "dind-cache-abc123" {
		t.Errorf("project cache volume %s", got)
	}
	if _, ok := id.cacheVolumeLabels()[LabelSandbox]; ok {
		t.Error("a project cache volume must not carry the sandbox label: teardown would remove it")
	}
}

func TestParsePlatform(t *testing.T) {
	for in, ok := range map[string]bool{"linux/amd64": true, "linux/arm/v7": true, "linux": false, "/amd64": false, "a/b/c/d": false} {
		if _, err := parsePlatform(in); (err == nil) != ok {
			t.Errorf("parsePlatform(%q) = %v, want ok=%v", in, err, ok)
		}
	}
}

func TestSandboxIDValidate(t *testing.T) {
	for id, ok := range map[SandboxID]bool{"0123456789abcdef": true, "short": false, "UPPERCASE12345": false, "with-dash-123456": false, "": false} {
		if err := id.Validate(); (err == nil) != ok {
			t.Errorf("Validate(%q) = %v, want ok=%v", id, err, ok)
		}
	}
}

// Containers run the image ids prepare resolved, not the tags: another
// job pulling the same tag for another platform cannot change them.
func TestContainersRunThePinnedImageIDs(t *testing.T) {
	p := testSpec()
	p.BuildImage.Platform = "linux/arm64"
	p.Services = []Service{{Image: ImageRef{Name: "pg:15"}}}
	p = p.pinned(map[string]string{"dind:test": "sha256:d", "job:test": "sha256:j", "helper:test": "sha256:h", "pg:15": "sha256:p"})
	cases := []struct {
		c       containerSpec
		wantID  string
		wantRef string
	}{
		{daemonContainer(p, "net", 1500, "v", nil), "sha256:d", "dind:test"},
		{buildContainer(p, "net"), "sha256:j", "job:test"},
		{helperContainer(p, "net"), "sha256:h", "helper:test"},
		{serviceContainer(p, "net", 0), "sha256:p", "pg:15"},
	}
	for _, tc := range cases {
		t.Run(string(tc.c.role), func(t *testing.T) {
			if tc.c.config.Image != tc.wantID || tc.c.platform != "" {
				t.Errorf("created from %q (platform %q), want the id %s", tc.c.config.Image, tc.c.platform, tc.wantID)
			}
			if got := tc.c.config.Labels[LabelImage]; got != tc.wantRef {
				t.Errorf("image label %q, want %q", got, tc.wantRef)
			}
		})
	}
}

func TestHealthCheckPort(t *testing.T) {
	tests := []struct {
		name   string
		env    []string
		want   uint16
		wantOK bool
	}{
		{"none", []string{"A=1"}, 0, false},
		{"set", []string{"HEALTHCHECK_TCP_PORT=7777"}, 7777, true},
		{"the service's own value wins over the job's", []string{"HEALTHCHECK_TCP_PORT=1", "HEALTHCHECK_TCP_PORT=5432"}, 5432, true},
		{"not a port", []string{"HEALTHCHECK_TCP_PORT=http"}, 0, false},
		{"out of range", []string{"HEALTHCHECK_TCP_PORT=70000"}, 0, false},
		{"zero", []string{"HEALTHCHECK_TCP_PORT=0"}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := healthCheckPort(tt.env)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("healthCheckPort(%v) = %d, %v; want %d, %v", tt.env, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
