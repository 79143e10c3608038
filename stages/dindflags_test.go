package stages

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"gitlab.com/dind-executor/dind-executor/config"
	"gitlab.com/dind-executor/dind-executor/executor"
)

// dindJob is a job with one dind service carrying command.
func dindJob(command ...string) *JobResponse {
	id := int64(5)
	return &JobResponse{ID: &id, Services: []JobImage{{Name: "docker:27-dind", Command: command}}}
}

// Every flag a job may set, in each spelling dockerd's parser takes, and
// what its daemon gets.
func TestAllowedDockerdFlags(t *testing.T) {
	cases := []struct {
		spellings [][]string
		flags     []string // what the daemon gets, besides what goes elsewhere
		check     func(executor.DaemonRequest) bool
	}{
		{[][]string{{"--registry-mirror=https://mirror.example.com"}, {"--registry-mirror", "https://mirror.example.com"}}, []string{"--registry-mirror=https://mirror.example.com"}, nil},
		{[][]string{{"--insecure-registry=registry.test:5000"}, {"--insecure-registry", "registry.test:5000"}}, []string{"--insecure-registry=registry.test:5000"}, nil},
		{[][]string{{"--insecure-registry=10.0.0.0/8"}, {"--insecure-registry", "10.0.0.0/8"}}, []string{"--insecure-registry=10.0.0.0/8"}, nil},
		{[][]string{{"--mtu=1400"}, {"--mtu", "1400"}}, nil, func(r executor.DaemonRequest) bool { return r.MTU == 1400 }},
		{[][]string{{"--dns=10.0.0.2"}, {"--dns", "10.0.0.2"}}, []string{"--dns=10.0.0.2"}, nil},
		{[][]string{{"--dns=fd00::53"}, {"--dns", "fd00::53"}}, []string{"--dns=fd00::53"}, nil},
		{[][]string{{"--dns-search=corp.example.com"}, {"--dns-search", "corp.example.com"}}, []string{"--dns-search=corp.example.com"}, nil},
		{[][]string{{"--dns-opt=ndots:2"}, {"--dns-opt", "ndots:2"}}, []string{"--dns-opt=ndots:2"}, nil},
		{[][]string{{"--default-address-pool=base=10.10.0.0/16,size=24"}, {"--default-address-pool", "base=10.10.0.0/16,size=24"}}, []string{"--default-address-pool=base=10.10.0.0/16,size=24"}, nil},
		{[][]string{{"--bip=10.20.0.1/24"}, {"--bip", "10.20.0.1/24"}}, []string{"--bip=10.20.0.1/24"}, nil},
		{[][]string{{"--fixed-cidr=10.20.0.0/25"}, {"--fixed-cidr", "10.20.0.0/25"}}, []string{"--fixed-cidr=10.20.0.0/25"}, nil},
		{[][]string{{"--fixed-cidr-v6=fd00:1::/64"}, {"--fixed-cidr-v6", "fd00:1::/64"}}, []string{"--fixed-cidr-v6=fd00:1::/64"}, nil},
		{[][]string{{"--ipv6"}, {"--ipv6=true"}}, []string{"--ipv6"}, nil},
		{[][]string{{"--ip6tables"}, {"--ip6tables=1"}}, []string{"--ip6tables"}, nil},
		{[][]string{{"--iptables=false"}, {"--iptables=0"}}, []string{"--iptables=false"}, nil},
		{[][]string{{"--ip-masq=false"}}, []string{"--ip-masq=false"}, nil},
		{[][]string{{"--icc=false"}}, []string{"--icc=false"}, nil},
		{[][]string{{"--userland-proxy=false"}}, []string{"--userland-proxy=false"}, nil},
		{[][]string{{"--storage-driver=vfs"}, {"--storage-driver", "vfs"}, {"-s", "vfs"}, {"-svfs"}, {"-s=vfs"}}, []string{"--storage-driver=vfs"}, nil},
		{[][]string{{"--storage-driver=overlay2"}, {"-s", "overlay2"}}, []string{"--storage-driver=overlay2"}, nil},
		{[][]string{{"--storage-driver=fuse-overlayfs"}}, []string{"--storage-driver=fuse-overlayfs"}, nil},
		{[][]string{{"--experimental"}, {"--experimental=true"}}, []string{"--experimental"}, nil},
		{[][]string{{"--feature=containerd-snapshotter"}, {"--feature", "containerd-snapshotter=true"}}, nil,
			func(r executor.DaemonRequest) bool {
				return maps.Equal(r.Features, map[string]bool{"containerd-snapshotter": true})
			}},
		{[][]string{{"--feature=buildkit=false"}, {"--feature", "buildkit=false"}}, nil,
			func(r executor.DaemonRequest) bool { return maps.Equal(r.Features, map[string]bool{"buildkit": false}) }},
		{[][]string{{"--log-level=debug"}, {"--log-level", "debug"}, {"-l", "debug"}, {"-ldebug"}, {"-l=debug"}}, []string{"--log-level=debug"}, nil},
		{[][]string{{"--debug"}, {"-D"}, {"--debug=true"}}, []string{"--debug"}, nil},
		{[][]string{{"-Dl", "warn"}}, []string{"--debug", "--log-level=warn"}, nil},
		{[][]string{{"--max-concurrent-downloads=10"}, {"--max-concurrent-downloads", "10"}}, []string{"--max-concurrent-downloads=10"}, nil},
		{[][]string{{"--max-concurrent-uploads=2"}, {"--max-concurrent-uploads", "2"}}, []string{"--max-concurrent-uploads=2"}, nil},
		{[][]string{{"--max-download-attempts=9"}, {"--max-download-attempts", "9"}}, []string{"--max-download-attempts=9"}, nil},
		{[][]string{{"--default-ulimit=nofile=1024:4096"}, {"--default-ulimit", "nofile=1024:4096"}}, []string{"--default-ulimit=nofile=1024:4096"}, nil},
		{[][]string{{"--http-proxy=http://proxy:3128"}, {"--http-proxy", "http://proxy:3128"}}, nil,
			func(r executor.DaemonRequest) bool { return r.Proxy == executor.Proxy{HTTP: "http://proxy:3128"} }},
		{[][]string{{"--https-proxy=http://proxy:3128"}, {"--https-proxy", "http://proxy:3128"}}, nil,
			func(r executor.DaemonRequest) bool { return r.Proxy == executor.Proxy{HTTPS: "http://proxy:3128"} }},
		{[][]string{{"--no-proxy=registry.test,.internal"}, {"--no-proxy", "registry.test,.internal"}}, nil,
			func(r executor.DaemonRequest) bool { return r.Proxy == executor.Proxy{No: "registry.test,.internal"} }},
	}
	allowed := map[string]bool{}
	for _, tc := range cases {
		for _, args := range tc.spellings {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				a, err := askOfDaemon(dindJob(args...), plainNotAsked)
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !slices.Equal(a.request.Flags, tc.flags) {
					t.Errorf("flags %q, want %q", a.request.Flags, tc.flags)
				}
				if tc.check != nil && !tc.check(a.request) {
					t.Errorf("request %+v", a.request)
				}
				if a.request.IsZero() {
					t.Error("the request is empty: the job could get a pooled daemon")
				}
			})
			name, _, _ := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
			allowed[name] = true
		}
	}
	// Every flag of the allow-list is tested here.
	for _, f := range dockerdFlags {
		if f.refused == "" && !allowed[f.long] {
			t.Errorf("--%s is allowed but not tested", f.long)
		}
	}
}

// Values each allowed flag refuses, with what to write instead.
func TestDockerdFlagValuesAreChecked(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--registry-mirror=mirror.example.com"}, "is not an http(s) URL"},
		{[]string{"--registry-mirror=https://u:p@mirror.example.com"}, "user name or password"},
		{[]string{"--insecure-registry=http://registry.test:5000"}, "has a scheme"},
		{[]string{"--mtu=100"}, `"100" is not a number from 576 to 65535`},
		{[]string{"--mtu=big"}, "is not a number"},
		{[]string{"--dns=dns.example.com"}, "is not an IP address"},
		{[]string{"--dns-search=bad name"}, "is not a domain name"},
		{[]string{"--dns-opt=ndots 2"}, "is not a resolver option"},
		{[]string{"--default-address-pool=10.10.0.0/16"}, "is not an address pool"},
		{[]string{"--default-address-pool=base=10.10.0.0/16,size=8"}, "size=8, which is not from the base range's prefix /16 to /32"},
		{[]string{"--bip=10.20.0.1"}, "is not an address with its prefix"},
		{[]string{"--fixed-cidr=10.20.0.0"}, "is not an address range"},
		{[]string{"--ipv6=maybe"}, "is not true or false"},
		{[]string{"--storage-driver=overlay"}, "is not one of overlay2, fuse-overlayfs, vfs"},
		{[]string{"-s", "devicemapper"}, "is not one of overlay2"},
		{[]string{"--feature=bad name"}, "is not a feature"},
		{[]string{"--feature=buildkit=sometimes"}, "does not set the feature to true or false"},
		{[]string{"--log-level=verbose"}, "is not one of debug, info, warn, error, fatal"},
		{[]string{"--max-concurrent-downloads=0"}, "is not a number from 1 to 100"},
		{[]string{"--default-ulimit=files=10"}, "is not a ulimit"},
		{[]string{"--default-ulimit=nofile=4096:1024"}, "soft at most hard"},
		{[]string{"--http-proxy=proxy:3128"}, "is not a proxy URL"},
		{[]string{"--dns-search=a\nb"}, "control character"},
		{[]string{"--mtu"}, "--mtu needs a value (write --mtu=VALUE)"},
		{[]string{"--mtu", "--debug"}, "--mtu needs a value"},
		{[]string{"-s"}, "-s needs a value"},
		{[]string{"--experimental", "false"}, `"false" is not a flag, and dockerd takes flags only (a boolean flag takes its value as --flag=false)`},
		{[]string{"--debug", "--", "x"}, `"x" after "--" is an argument`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := askOfDaemon(dindJob(tc.args...), plainNotAsked)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), "docker:27-dind") {
				t.Errorf("error %q does not name the service", err)
			}
		})
	}
}

// Every flag that would open or weaken the daemon, or take it from the
// executor, is refused in every spelling, naming the flag and why.
func TestRefusedDockerdFlags(t *testing.T) {
	cases := []struct {
		spellings [][]string
		why       string
	}{
		{[][]string{{"-H", "tcp://0.0.0.0:2375"}, {"-Htcp://0.0.0.0:2375"}, {"--host=tcp://0.0.0.0:2375"}, {"--host", "tcp://0.0.0.0:2375"}, {"-H", "unix:///tmp/other.sock"}, {"--host=fd://"}}, whyEndpoint},
		{[][]string{{"--tls=false"}, {"--tlsverify=false"}}, whyEndpoint},
		{[][]string{{"--tlscacert=/ca.pem"}, {"--tlscacert", "/ca.pem"}}, whyEndpoint},
		{[][]string{{"--tlscert=/c.pem"}, {"--tlscert", "/c.pem"}}, whyEndpoint},
		{[][]string{{"--tlskey=/k.pem"}, {"--tlskey", "/k.pem"}}, whyEndpoint},
		{[][]string{{"-G", "users"}, {"--group=users"}}, whyEndpoint},
		{[][]string{{"--api-cors-header=*"}, {"--api-cors-header", "*"}}, whyEndpoint},
		{[][]string{{"--metrics-addr=0.0.0.0:9323"}, {"--metrics-addr", "0.0.0.0:9323"}}, whyEndpoint},
		{[][]string{{"--data-root=/tmp/d"}, {"--data-root", "/tmp/d"}}, whyState},
		{[][]string{{"--exec-root=/tmp/e"}, {"--exec-root", "/tmp/e"}}, whyState},
		{[][]string{{"-p", "/tmp/p.pid"}, {"--pidfile=/tmp/p.pid"}}, whyState},
		{[][]string{{"--containerd=/run/c.sock"}, {"--containerd", "/run/c.sock"}}, whyState},
		{[][]string{{"--containerd-namespace=x"}}, whyState},
		{[][]string{{"--containerd-plugins-namespace=x"}}, whyState},
		{[][]string{{"--config-file=/tmp/daemon.json"}, {"--config-file", "/tmp/daemon.json"}}, whyState},
		{[][]string{{"--cgroup-parent=/"}, {"--cgroup-parent", "/"}}, whyConfinement},
		{[][]string{{"--default-cgroupns-mode=host"}}, whyConfinement},
		{[][]string{{"--exec-opt=native.cgroupdriver=systemd"}}, whyConfinement},
		{[][]string{{"--default-runtime=crun"}, {"--default-runtime", "crun"}}, whyConfinement},
		{[][]string{{"--add-runtime=x=/bin/sh"}}, whyConfinement},
		{[][]string{{"--seccomp-profile=unconfined"}}, whyConfinement},
		{[][]string{{"--init-path=/bin/sh"}}, whyConfinement},
		{[][]string{{"--userland-proxy-path=/bin/sh"}}, whyConfinement},
		{[][]string{{"--oom-score-adjust=-1000"}}, whyConfinement},
		{[][]string{{"--userns-remap=default"}, {"--userns-remap", "default"}}, whyUsers},
		{[][]string{{"--rootless"}}, whyUsers},
		{[][]string{{"--authorization-plugin=authz"}, {"--authorization-plugin", "authz"}}, whyAuthz},
		{[][]string{{"--live-restore"}}, whyLive},
		{[][]string{{"--validate"}, {"--version"}, {"-v"}, {"--help"}, {"-h"}}, whyExit},
		{[][]string{{"--bridge=none"}, {"-b", "none"}, {"--shutdown-timeout=1"}, {"--log-driver", "syslog"}, {"--no-such-flag"}, {"-Dz"}},
			"is not among the dockerd flags a job may set here (--registry-mirror, --insecure-registry, --mtu"},
	}
	tested := map[string]bool{}
	for _, tc := range cases {
		for _, args := range tc.spellings {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				_, err := askOfDaemon(dindJob(append([]string{"--mtu=1400"}, args...)...), plainNotAsked)
				if err == nil {
					t.Fatal("accepted")
				}
				msg := err.Error()
				flag := args[0]
				for _, want := range []string{"service docker:27-dind asks its Docker daemon for \"" + flag, "which this executor refuses", tc.why, "remove it from the service's command"} {
					if !strings.Contains(msg, want) {
						t.Errorf("error %q lacks %q", msg, want)
					}
				}
			})
			name, _, _ := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
			if f := lookupFlag(name, name); f != nil {
				tested[f.long] = true
			}
		}
	}
	for _, f := range dockerdFlags {
		if f.refused != "" && !tested[f.long] {
			t.Errorf("--%s is refused but not tested", f.long)
		}
	}
}

// A job that turns TLS on, or names the endpoints the daemon already has,
// asks nothing; a job written with TLS off keeps its --tls=false and -H
// tcp://0.0.0.0:2375, which its plain endpoint serves. Without the TLS-off
// variables, --tls=false is refused with how to write such a job.
func TestEndpointFlagsTheSandboxAlreadyServes(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		plain    plainMode
		wantErr  string
		wantNote string
	}{
		{[]string{"--tls=false"}, plainServed, "", "port 2375 answers the build container without TLS"},
		{[]string{"--tlsverify=false"}, plainServed, "", "without TLS"},
		{[]string{"-H", "tcp://0.0.0.0:2375"}, plainServed, "", "port 2375 answers the build container"},
		{[]string{"--host=tcp://:2375"}, plainServed, "", "port 2375"},
		{[]string{"--host=unix:///var/run/docker.sock"}, plainNotAsked, "", "its unix socket"},
		{[]string{"--host=tcp://0.0.0.0:2376"}, plainNotAsked, "", "port 2376 with mutual TLS"},
		{[]string{"--tlsverify"}, plainNotAsked, "", "mutual TLS"},
		{[]string{"--tls=true"}, plainNotAsked, "", "mutual TLS"},
		{[]string{"--tls=false"}, plainNotAsked, `remove it from the service's command; or, for a daemon without TLS, set DOCKER_HOST=tcp://docker:2375 and DOCKER_TLS_CERTDIR="" in the job's variables`, ""},
		{[]string{"-H", "tcp://0.0.0.0:2375"}, plainNotAsked, "DOCKER_TLS_CERTDIR", ""},
		{[]string{"--tls=false"}, plainRefused, whyEndpoint + "; remove it", ""},
		{[]string{"-H", "tcp://0.0.0.0:2377"}, plainServed, whyEndpoint, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			a, err := askOfDaemon(dindJob(tc.args...), tc.plain)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.args[0]) {
					t.Fatalf("error %v, want one naming %s and containing %q", err, tc.args[0], tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !a.request.IsZero() {
				t.Errorf("request %+v, want none", a.request)
			}
			if !slices.ContainsFunc(a.notes, func(n string) bool {
				return strings.Contains(n, tc.wantNote) && strings.Contains(n, "already what the sandbox's daemon serves")
			}) {
				t.Errorf("notes %q lack %q", a.notes, tc.wantNote)
			}
		})
	}
}

// The forms .gitlab-ci.yml writes a dind service's entrypoint and command
// in: flags alone, after dockerd or dockerd-entrypoint.sh (by name or
// path), in the entrypoint itself; anything that runs another program is
// refused.
func TestDinDServiceEntrypointForms(t *testing.T) {
	for _, tc := range []struct {
		name       string
		entrypoint []string
		command    []string
		want       []string
		wantErr    string
	}{
		{"no command", nil, nil, nil, ""},
		{"flags", nil, []string{"--experimental", "--dns=10.0.0.2"}, []string{"--experimental", "--dns=10.0.0.2"}, ""},
		{"dockerd first", nil, []string{"dockerd", "--experimental"}, []string{"--experimental"}, ""},
		{"the entrypoint first", nil, []string{"dockerd-entrypoint.sh", "--experimental"}, []string{"--experimental"}, ""},
		{"the image's entrypoint named", []string{"dockerd-entrypoint.sh"}, []string{"--experimental"}, []string{"--experimental"}, ""},
		{"by its path", []string{"/usr/local/bin/dockerd-entrypoint.sh"}, []string{"--experimental"}, []string{"--experimental"}, ""},
		{"the entrypoint and dockerd", []string{"dockerd-entrypoint.sh"}, []string{"dockerd", "--experimental"}, []string{"--experimental"}, ""},
		{"dockerd as the entrypoint", []string{"dockerd"}, []string{"--experimental"}, []string{"--experimental"}, ""},
		{"flags in the entrypoint", []string{"dockerd-entrypoint.sh", "--experimental"}, []string{"--dns=10.0.0.2"}, []string{"--experimental", "--dns=10.0.0.2"}, ""},
		{"entrypoint reset", []string{""}, []string{"dockerd", "--experimental"}, []string{"--experimental"}, ""},
		{"a shell", []string{"sh", "-c"}, []string{"dockerd-entrypoint.sh --experimental"}, nil, `its entrypoint runs "sh", not dockerd`},
		{"another program", nil, []string{"sleep", "600"}, nil, `its command runs "sleep", not dockerd`},
		{"dockerd then a word", nil, []string{"dockerd", "experimental"}, nil, `runs "experimental", not dockerd`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := dindJob(tc.command...)
			job.Services[0].Entrypoint = tc.entrypoint
			a, err := askOfDaemon(job, plainNotAsked)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a.request.Flags, tc.want) {
				t.Errorf("flags %q, want %q", a.request.Flags, tc.want)
			}
		})
	}
}

// The variables dockerd reads reach it from the job's public variables and
// the service's own (which win), as the docker executor gives them to the
// service; DOCKER_DRIVER becomes --storage-driver; DOCKER_TLS_CERTDIR is
// left out and the job log says so; a job without a dind service asks
// nothing, whatever its variables.
func TestDinDServiceVariables(t *testing.T) {
	v := func(k, val string) JobVariable { return JobVariable{Key: k, Value: val, Public: true} }
	for _, tc := range []struct {
		name      string
		jobVars   []JobVariable
		svcVars   []JobVariable
		command   []string
		noDinD    bool
		want      executor.DaemonRequest
		wantErr   string
		wantNotes []string
	}{
		{name: "the service's proxy", svcVars: []JobVariable{v("HTTP_PROXY", "http://proxy:3128"), v("no_proxy", "registry.test")},
			want:      executor.DaemonRequest{Proxy: executor.Proxy{HTTP: "http://proxy:3128", No: "registry.test"}},
			wantNotes: []string{"The job's HTTP_PROXY, NO_PROXY reach its daemon"}},
		{name: "the job's proxy, the service's wins", jobVars: []JobVariable{v("HTTPS_PROXY", "http://job:3128"), v("https_proxy", "http://lower:3128")},
			svcVars: []JobVariable{v("HTTPS_PROXY", "http://svc:3128")},
			want:    executor.DaemonRequest{Proxy: executor.Proxy{HTTPS: "http://svc:3128"}}},
		{name: "lower case alone", jobVars: []JobVariable{v("http_proxy", "http://lower:3128")},
			want: executor.DaemonRequest{Proxy: executor.Proxy{HTTP: "http://lower:3128"}}},
		{name: "a secret job variable is not the service's", jobVars: []JobVariable{{Key: "HTTP_PROXY", Value: "http://x:1"}}},
		{name: "the flag wins over the variable", svcVars: []JobVariable{v("HTTP_PROXY", "http://var:3128")}, command: []string{"--http-proxy=http://flag:3128"},
			want: executor.DaemonRequest{Proxy: executor.Proxy{HTTP: "http://flag:3128"}}},
		{name: "DOCKER_DRIVER", jobVars: []JobVariable{v("DOCKER_DRIVER", "overlay2")},
			want:      executor.DaemonRequest{Flags: []string{"--storage-driver=overlay2"}},
			wantNotes: []string{"DOCKER_DRIVER=overlay2 reaches the daemon as --storage-driver=overlay2"}},
		{name: "DOCKER_DRIVER under the flag", jobVars: []JobVariable{v("DOCKER_DRIVER", "overlay2")}, command: []string{"-s", "vfs"},
			want:      executor.DaemonRequest{Flags: []string{"--storage-driver=vfs"}},
			wantNotes: []string{"DOCKER_DRIVER is not applied: the dind service's --storage-driver holds"}},
		{name: "DOCKER_DRIVER refused", jobVars: []JobVariable{v("DOCKER_DRIVER", "overlay")},
			wantErr: `DOCKER_DRIVER="overlay" asks the sandbox's daemon for a storage driver it does not take: use one of overlay2, fuse-overlayfs, vfs`},
		{name: "DOCKER_TLS_CERTDIR", jobVars: []JobVariable{v("DOCKER_TLS_CERTDIR", "/certs")},
			wantNotes: []string{"DOCKER_TLS_CERTDIR does not reach the sandbox's daemon: it always has TLS"}},
		{name: "DOCKER_TLS_CERTDIR empty, on the service", svcVars: []JobVariable{v("DOCKER_TLS_CERTDIR", "")},
			wantNotes: []string{"DOCKER_TLS_CERTDIR does not reach the sandbox's daemon"}},
		{name: "other service variables", svcVars: []JobVariable{v("DOCKER_HOST", "unix:///x.sock"), v("FOO", "1")},
			wantNotes: []string{"Service docker:27-dind: its variables DOCKER_HOST, FOO do not reach the sandbox's daemon"}},
		{name: "no dind service", noDinD: true, jobVars: []JobVariable{v("HTTP_PROXY", "http://proxy:3128"), v("DOCKER_DRIVER", "overlay"), v("DOCKER_TLS_CERTDIR", "")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := dindJob(tc.command...)
			job.Variables = tc.jobVars
			job.Services[0].Variables = tc.svcVars
			if tc.noDinD {
				job.Services[0].Name = "postgres:15"
			}
			a, err := askOfDaemon(job, plainNotAsked)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.request.Proxy != tc.want.Proxy || !slices.Equal(a.request.Flags, tc.want.Flags) {
				t.Errorf("request %+v, want %+v", a.request, tc.want)
			}
			for _, want := range tc.wantNotes {
				if !slices.ContainsFunc(a.notes, func(n string) bool { return strings.Contains(n, want) }) {
					t.Errorf("notes %q lack %q", a.notes, want)
				}
			}
			if tc.noDinD && len(a.notes) > 0 {
				t.Errorf("notes without a dind service: %q", a.notes)
			}
		})
	}
}

// Flags of two dind services add up, in order; the job log lists what the
// daemon takes.
func TestFlagsOfEveryDinDService(t *testing.T) {
	job := dindJob("--mtu=1400", "--insecure-registry", "registry.test:5000")
	job.Services = append(job.Services, JobImage{Name: "docker:dind", Alias: "dockerd", Command: []string{"--registry-mirror=https://m.example.com"}})
	a, err := askOfDaemon(job, plainNotAsked)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"--insecure-registry=registry.test:5000", "--registry-mirror=https://m.example.com"}; !slices.Equal(a.request.Flags, want) || a.request.MTU != 1400 {
		t.Errorf("request %+v, want flags %q and MTU 1400", a.request, want)
	}
	for _, want := range []string{"Service docker:27-dind: its daemon takes --mtu=1400 --insecure-registry=registry.test:5000", "Service docker:dind: its daemon takes --registry-mirror=https://m.example.com"} {
		if !slices.Contains(a.notes, want) {
			t.Errorf("notes %q lack %q", a.notes, want)
		}
	}
}

// A dind service's image serves as the daemon image only where
// policy.allowed_dind_images lists it; the job log always says which image
// serves and why, and a job that pins one takes no pooled daemon.
func TestPinnedDaemonImage(t *testing.T) {
	for _, tc := range []struct {
		name      string
		security  string // "": the default profile
		allowed   []string
		services  []JobImage
		wantImage string // "": the operator's
		wantNote  string
		wantErr   string
	}{
		{name: "no dind service", wantNote: "Daemon image: docker:27-dind, the runner's dind_image"},
		{name: "the operator's image", services: []JobImage{{Name: "docker:27-dind"}},
			wantNote: "Daemon image: docker:27-dind, the runner's dind_image, which service docker:27-dind names"},
		{name: "the operator's image, spelled in full", services: []JobImage{{Name: "docker.io/library/docker:27-dind"}},
			wantNote: "which service docker.io/library/docker:27-dind names"},
		{name: "pinned without permission", services: []JobImage{{Name: "docker:24.0.5-dind"}},
			wantNote: "Daemon image: docker:27-dind, the runner's dind_image, not docker:24.0.5-dind as the job's services ask: policy.allowed_dind_images does not list it"},
		{name: "pinned, another version allowed", allowed: []string{"docker:27.*-dind"}, services: []JobImage{{Name: "docker:24.0.5-dind"}},
			wantNote: "not docker:24.0.5-dind"},
		{name: "pinned with permission", allowed: []string{"docker:2[4-7].*-dind"}, services: []JobImage{{Name: "docker:24.0.5-dind", PullPolicy: []string{"always"}}},
			wantImage: "docker:24.0.5-dind",
			wantNote:  "Daemon image: docker:24.0.5-dind, as service docker:24.0.5-dind asks (policy.allowed_dind_images lists it; the runner's dind_image is docker:27-dind)"},
		{name: "pinned with permission, rootless profile", security: config.DaemonSecurityRootless, allowed: []string{"docker:*"},
			services: []JobImage{{Name: "docker:24.0.5-dind-rootless"}},
			wantNote: "Daemon image: docker:27-dind, the runner's dind_image, not docker:24.0.5-dind-rootless as the job's services ask: the rootless profile runs only the runner's dind_image"},
		{name: "two pinned versions", allowed: []string{"docker:*"}, services: []JobImage{{Name: "docker:24.0.5-dind"}, {Name: "docker:25.0.1-dind", Alias: "d2"}},
			wantErr: "services docker:24.0.5-dind, docker:25.0.1-dind ask for 2 daemon images, and the sandbox has one daemon"},
		{name: "a pinned version with a platform", allowed: []string{"docker:*"}, services: []JobImage{{Name: "docker:24.0.5-dind", ExecutorOpts: platformOpts("linux/arm64")}},
			wantImage: "docker:24.0.5-dind", wantNote: "as service docker:24.0.5-dind asks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Policy.AllowedDinDImages = tc.allowed
			if tc.security != "" {
				cfg.Sandbox.DaemonSecurity = tc.security
			}
			cfg.Sandbox.PullPolicy = []config.PullPolicy{config.PullIfNotPresent, config.PullAlways}
			h := &Hooks{Config: cfg}
			id := int64(5)
			job := &JobResponse{ID: &id, Services: tc.services}
			spec, notes, err := h.spec(executor.Identity{SandboxID: "0123456789abcdef", JobID: 5}, job)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			img := spec.DaemonRequest.Image
			switch {
			case tc.wantImage == "" && img != nil:
				t.Errorf("daemon image %s, want the operator's", img.Name)
			case tc.wantImage != "" && (img == nil || img.Name != tc.wantImage):
				t.Errorf("daemon image %v, want %s", img, tc.wantImage)
			case tc.wantImage != "" && !slices.Equal(img.Pull, []executor.PullPolicy{executor.PullAlways}) && tc.services[0].PullPolicy != nil:
				t.Errorf("pull %v, want the service's pull_policy", img.Pull)
			}
			if len(notes) == 0 || !strings.Contains(notes[0], tc.wantNote) {
				t.Errorf("notes %q, want first %q", notes, tc.wantNote)
			}
		})
	}
}

func platformOpts(p string) ExecutorOpts {
	var o ExecutorOpts
	o.Docker.Platform = p
	return o
}

// A refused flag fails the job at prepare as any other policy refusal:
// Spec returns the error, which is a system failure.
func TestSpecRefusesADockerdFlag(t *testing.T) {
	h := &Hooks{Config: config.Default()}
	job := dindJob("--mtu=1400", "-H", "tcp://0.0.0.0:2375")
	_, err := h.Spec(executor.Identity{SandboxID: "0123456789abcdef", JobID: 5}, job)
	if err == nil || !strings.Contains(err.Error(), `"-H tcp://0.0.0.0:2375"`) {
		t.Fatalf("error %v, want the refusal of -H", err)
	}
	code, _ := ExitCode(err, RunnerEnv{BuildFailureExitCode: 1, SystemFailureExitCode: 2})
	if code != 2 {
		t.Errorf("exit code %d, want the system failure's 2, as other policy refusals", code)
	}
}

// FuzzAskOfDaemon checks that a dind service's entrypoint and command,
// whatever they hold, never panic the reader, that every refusal names the
// service, and that every flag the daemon gets is one of the allow-list,
// written --name or --name=value with no control character.
func FuzzAskOfDaemon(f *testing.F) {
	for _, s := range []string{
		"--mtu=1400\x00--insecure-registry\x00registry.test:5000", "-H\x00tcp://0.0.0.0:2375", "--tls=false", "-Dl\x00debug",
		"-svfs", "-s=vfs", "--", "--\x00x", "-", "--=", "-\xff", "dockerd\x00--experimental", "dockerd-entrypoint.sh\x00dockerd\x00-D",
		"sh\x00-c\x00dockerd", "--feature=a=b=c", "--default-address-pool=base=10.0.0.0/8,size=99", "--default-ulimit=nofile=-1:-1",
	} {
		f.Add("", s)
		f.Add("dockerd-entrypoint.sh", s)
	}
	f.Fuzz(func(t *testing.T, entrypoint, command string) {
		job := dindJob(strings.Split(command, "\x00")...)
		if entrypoint != "" {
			job.Services[0].Entrypoint = strings.Split(entrypoint, "\x00")
		}
		for _, plain := range []plainMode{plainNotAsked, plainServed, plainRefused} {
			a, err := askOfDaemon(job, plain)
			if err != nil {
				if !strings.Contains(err.Error(), "docker:27-dind") && !strings.Contains(err.Error(), "DOCKER_DRIVER") {
					t.Fatalf("refusal %q does not name the service", err)
				}
				continue
			}
			for _, flag := range a.request.Flags {
				name, _, _ := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
				f := lookupFlag(name, "")
				if !strings.HasPrefix(flag, "--") || f == nil || f.refused != "" {
					t.Fatalf("the daemon gets %q, which is not on the allow-list", flag)
				}
				if strings.ContainsFunc(flag, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
					t.Fatalf("the daemon gets %q, with a control character", flag)
				}
			}
		}
	})
}
