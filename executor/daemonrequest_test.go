package executor

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// The job's flags come after the operator's (dockerd appends list flags,
// so the operator's mirrors are tried first); one the operator already
// gives is not repeated; the job's --mtu sets the daemon's bridges and the
// default for the networks it creates.
func TestDaemonArgsTakeTheJobsFlagsAfterTheOperators(t *testing.T) {
	p := daemonTable()
	p.DaemonRequest = DaemonRequest{
		MTU:   1300,
		Flags: []string{"--registry-mirror=https://job-mirror.example.com", "--registry-mirror=http://mirror:5000", "--insecure-registry=registry.test:5000", "--experimental", "--storage-driver=vfs"},
	}
	c := daemonContainer(p, "net", 1450, "v", []string{"dockerd-entrypoint.sh"})
	want := []string{
		"--mtu=1300",
		"--default-network-opt=bridge=com.docker.network.driver.mtu=1300",
		"--registry-mirror=https://mirror.example.com",
		"--registry-mirror=http://mirror:5000",
		"--insecure-registry=mirror:5000",
		"--insecure-registry=10.0.0.0/8",
		"--dns=10.0.0.2",
		"--dns=fd00::53",
		"--config-file=/etc/dind-executor/daemon.json",
		"--registry-mirror=https://job-mirror.example.com",
		"--insecure-registry=registry.test:5000",
		"--experimental",
		"--storage-driver=vfs",
	}
	if !slices.Equal(c.config.Cmd, want) {
		t.Errorf("cmd =\n%q\nwant\n%q", c.config.Cmd, want)
	}
}

// A daemon image that says it is Docker 23 or older gets no
// --default-network-opt (its dockerd would refuse it and exit); one that
// does not say is taken to be recent.
func TestDaemonArgsForAnOldDockerd(t *testing.T) {
	for version, wantOpt := range map[string]bool{"": true, "20.10.16": false, "23.0.6": false, "24.0.5": true, "27.3.1": true, "garbage": true} {
		d := DaemonSpec{imageDockerVersion: version}
		args := daemonArgs(d, DaemonRequest{}, 1500)
		if got := slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--default-network-opt") }); got != wantOpt {
			t.Errorf("DOCKER_VERSION=%q: args %q, want --default-network-opt %v", version, args, wantOpt)
		}
		if args[0] != "--mtu=1500" {
			t.Errorf("DOCKER_VERSION=%q: args %q lack the MTU", version, args)
		}
	}
}

// The job's request is added to the operator's settings, never in their
// place: features and proxies the operator set hold, no_proxy grows, and
// the job log is told what was not applied.
func TestWithDaemonRequest(t *testing.T) {
	pinned := ImageRef{Name: "docker:24.0.5-dind", Pull: []PullPolicy{PullIfNotPresent}}
	cases := []struct {
		name      string
		operator  func(*DaemonSpec)
		request   DaemonRequest
		want      func(*DaemonSpec)
		wantNotes []string
	}{
		{name: "nothing asked"},
		{
			name:    "a pinned image",
			request: DaemonRequest{Image: &pinned},
			want:    func(d *DaemonSpec) { d.Image = pinned },
		},
		{
			name:     "features beside the operator's, which hold",
			operator: func(d *DaemonSpec) { d.Features = map[string]bool{"buildkit": false, "cdi": true} },
			request:  DaemonRequest{Features: map[string]bool{"buildkit": true, "cdi": true, "containerd-snapshotter": true}},
			want: func(d *DaemonSpec) {
				d.Features = map[string]bool{"buildkit": false, "cdi": true, "containerd-snapshotter": true}
			},
			wantNotes: []string{"the job's --feature buildkit=true is not applied: the runner's [daemon] features sets buildkit=false"},
		},
		{
			name:    "features without the operator's",
			request: DaemonRequest{Features: map[string]bool{"containerd-snapshotter": true}},
			want:    func(d *DaemonSpec) { d.Features = map[string]bool{"containerd-snapshotter": true} },
		},
		{
			name:    "the job's proxy where the operator has none",
			request: DaemonRequest{Proxy: Proxy{HTTP: "http://job-proxy:3128", HTTPS: "http://job-proxy:3128", No: "registry.test"}},
			want: func(d *DaemonSpec) {
				d.Proxy = Proxy{HTTP: "http://job-proxy:3128", HTTPS: "http://job-proxy:3128", No: "registry.test"}
			},
		},
		{
			name:     "the operator's proxy holds, no_proxy grows",
			operator: func(d *DaemonSpec) { d.Proxy = Proxy{HTTPS: "http://proxy:3128", No: "localhost,docker"} },
			request:  DaemonRequest{Proxy: Proxy{HTTP: "http://job-proxy:3128", HTTPS: "http://job-proxy:3128", No: "registry.test"}},
			want: func(d *DaemonSpec) {
				d.Proxy = Proxy{HTTP: "http://job-proxy:3128", HTTPS: "http://proxy:3128", No: "localhost,docker,registry.test"}
			},
			wantNotes: []string{"the job's HTTPS_PROXY for its daemon is not applied: the runner's [daemon] https_proxy holds"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := testSpec()
			if tc.operator != nil {
				tc.operator(&p.Daemon)
			}
			operatorFeatures := maps.Clone(p.Daemon.Features)
			want := p.Daemon
			want.Features = maps.Clone(want.Features)
			if tc.want != nil {
				tc.want(&want)
			}
			p.DaemonRequest = tc.request
			got, notes := p.withDaemonRequest()
			if got.Daemon.Image.Name != want.Image.Name || !slices.Equal(got.Daemon.Image.Pull, want.Image.Pull) ||
				!maps.Equal(got.Daemon.Features, want.Features) || got.Daemon.Proxy != want.Proxy {
				t.Errorf("daemon =\n%+v\nwant\n%+v", got.Daemon, want)
			}
			if !slices.Equal(notes, tc.wantNotes) {
				t.Errorf("notes = %q, want %q", notes, tc.wantNotes)
			}
			if !maps.Equal(p.Daemon.Features, operatorFeatures) {
				t.Errorf("the operator's features were changed in place: %v", p.Daemon.Features)
			}
		})
	}
}

// A job's --mtu is bounded by network_mtu when the operator set it, else
// by the sandbox network's MTU.
func TestCheckJobMTU(t *testing.T) {
	for _, tc := range []struct {
		job, network, sandbox int
		wantErr               string
	}{
		{0, 0, 1500, ""},
		{1400, 0, 1500, ""},
		{1500, 0, 1500, ""},
		{1501, 0, 1500, "larger than the sandbox network's MTU (1500): packets that do not fit would be dropped; use --mtu=1500 or less"},
		{1400, 1300, 1500, "larger than the runner's [daemon] network_mtu (1300)"},
		{1300, 1300, 1500, ""},
		{1500, 9000, 1500, ""},
	} {
		err := checkJobMTU(tc.job, tc.network, tc.sandbox)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("job %d, network_mtu %d, sandbox %d: %v, want %q", tc.job, tc.network, tc.sandbox, err, tc.wantErr)
		}
	}
}

// Any request makes the job's daemon its own, never a pooled one made
// with the operator's settings alone.
func TestAJobThatAsksOfItsDaemonTakesNoPooledOne(t *testing.T) {
	p := testSpec()
	p.PoolSize = 2
	if !p.mayTakePooled() {
		t.Fatal("a job that asks nothing of its daemon cannot take a pooled one")
	}
	if !(DaemonRequest{}).IsZero() {
		t.Error("an empty request is not zero")
	}
	for name, r := range map[string]DaemonRequest{
		"image":    {Image: &ImageRef{Name: "docker:24-dind"}},
		"flags":    {Flags: []string{"--experimental"}},
		"mtu":      {MTU: 1400},
		"features": {Features: map[string]bool{"x": false}},
		"proxy":    {Proxy: Proxy{No: "x"}},
	} {
		p.DaemonRequest = r
		if r.IsZero() || p.mayTakePooled() {
			t.Errorf("%s: a job that asks it of its daemon could take a pooled one", name)
		}
	}
}
