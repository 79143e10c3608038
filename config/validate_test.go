package config

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestValidate covers edges the fixtures do not: each case changes a valid
// Default() and names the problems it must produce (none for valid edges).
func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*Config)
		want   [][]string // per problem, in order: substrings it must contain
	}{
		{"defaults", func(*Config) {}, nil},
		{"mtu lower bound", func(c *Config) { c.Sandbox.MTU = 576 }, nil},
		{"rootless", func(c *Config) { c.Sandbox.DaemonSecurity = DaemonSecurityRootless }, nil},
		{"rootless with a pool", func(c *Config) { c.Sandbox.DaemonSecurity = DaemonSecurityRootless; c.Pool.Size = 2 }, nil},
		{"rootless with the layer cache", func(c *Config) {
			c.Sandbox.DaemonSecurity = DaemonSecurityRootless
			c.Cache.Layers = CacheLayersProject
		}, [][]string{{"cache.layers", "not supported with sandbox.daemon_security = \"rootless\"", "leave cache.layers empty"}}},
		{"mtu upper bound", func(c *Config) { c.Sandbox.MTU = 65535 }, nil},
		{"mtu below", func(c *Config) { c.Sandbox.MTU = 575 }, [][]string{{"sandbox.mtu = 575", "0 (", "576..65535"}}},
		{"mtu above", func(c *Config) { c.Sandbox.MTU = 65536 }, [][]string{{"sandbox.mtu = 65536"}}},
		{"mtu negative", func(c *Config) { c.Sandbox.MTU = -1 }, [][]string{{"sandbox.mtu = -1"}}},
		{"ready_timeout 1s", func(c *Config) { c.Sandbox.ReadyTimeout.Duration = time.Second }, nil},
		{"ready_timeout just over 1h", func(c *Config) { c.Sandbox.ReadyTimeout.Duration = time.Hour + 1 },
			[][]string{{"sandbox.ready_timeout", "1h0m0.000000001s", "1s..1h"}}},
		{"ready_timeout negative", func(c *Config) { c.Sandbox.ReadyTimeout.Duration = -time.Second },
			[][]string{{"sandbox.ready_timeout", `"-1s"`}}},
		{"all pull policies", func(c *Config) {
			c.Sandbox.PullPolicy = []PullPolicy{PullNever, PullIfNotPresent, PullAlways}
		}, nil},
		{"nil pull policy", func(c *Config) { c.Sandbox.PullPolicy = nil },
			[][]string{{"sandbox.pull_policy is empty"}}},
		{"pull policy wrong case", func(c *Config) { c.Sandbox.PullPolicy = []PullPolicy{"Always"} },
			[][]string{{"sandbox.pull_policy[0]", `"Always"`}}},
		{"helper image digest", func(c *Config) {
			c.Sandbox.HelperImage = "registry.example.com/helper@sha256:" + strings.Repeat("a", 64)
		}, nil},
		{"volume nested in builds dir is allowed", func(c *Config) { c.Sandbox.Volumes = []string{"/srv:/builds/tools"} }, nil},
		{"volume sibling prefix is not a parent", func(c *Config) { c.Sandbox.Volumes = []string{"/srv:/builds2", "/srv:/cert"} }, nil},
		{"volume parent of custom builds dir", func(c *Config) {
			c.Sandbox.BuildsDir = "/work/builds"
			c.Sandbox.Volumes = []string{"/srv:/work"}
		}, [][]string{{"sandbox.volumes[0]", `"/srv:/work"`, "/work/builds (sandbox.builds_dir"}}},
		{"volume with two problems", func(c *Config) { c.Sandbox.Volumes = []string{"srv:/certs:ro"} },
			[][]string{{"sandbox.volumes[0]", `host path "srv"`}, {"sandbox.volumes[0]", "/certs ("}}},
		{"volume empty", func(c *Config) { c.Sandbox.Volumes = []string{""} },
			[][]string{{"sandbox.volumes[0]", `""`, "host:container"}}},
		{"volume too many colons", func(c *Config) { c.Sandbox.Volumes = []string{"/a:/b:ro:x"} },
			[][]string{{"sandbox.volumes[0]", `"/a:/b:ro:x"`}}},
		{"builds dir is root", func(c *Config) { c.Sandbox.BuildsDir = "/" },
			[][]string{{"sandbox.builds_dir", `"/"`, "/certs"}, {"sandbox.cache_dir", "inside sandbox.builds_dir"}}},
		{"builds dir inside cache dir", func(c *Config) { c.Sandbox.BuildsDir = "/cache/b" },
			[][]string{{`sandbox.builds_dir = "/cache/b" is inside sandbox.cache_dir = "/cache"`}}},
		{"dirs differ only by prefix", func(c *Config) { c.Sandbox.CacheDir = "/builds-cache" }, nil},
		{"empty builds dir", func(c *Config) { c.Sandbox.BuildsDir = "" },
			[][]string{{"sandbox.builds_dir", `""`, "absolute"}}},
		{"engine unix", func(c *Config) { c.Engine.Host = "unix:///run/docker.sock" }, nil},
		{"engine hosts", func(c *Config) { c.Engine.Hosts = []string{"unix:///run/a.sock", "tcp://b.example.com:2375"} }, nil},
		{"engine host and hosts", func(c *Config) {
			c.Engine.Host = "unix:///run/docker.sock"
			c.Engine.Hosts = []string{"unix:///run/a.sock"}
		}, [][]string{{"engine.host and engine.hosts are both set"}}},
		{"engine hosts empty is unset", func(c *Config) { c.Engine.Hosts = []string{} }, nil},
		{"engine hosts twice", func(c *Config) { c.Engine.Hosts = []string{"unix:///a.sock", "unix:///a.sock"} },
			[][]string{{"engine.hosts", `"unix:///a.sock" twice`}}},
		{"engine hosts bad entry", func(c *Config) { c.Engine.Hosts = []string{"unix:///a.sock", "b:2375"} },
			[][]string{{"engine.hosts", `"b:2375"`, "no scheme"}}},
		{"engine hosts tls without tcp", func(c *Config) {
			c.Engine.Hosts = []string{"unix:///a.sock", "ssh://b"}
			c.Engine.TLSCertPath = "/nonexistent"
		}, [][]string{{"no Engine in engine.hosts is tcp://"}, {"/nonexistent/ca.pem"}, {"/nonexistent/cert.pem"}, {"/nonexistent/key.pem"}}},
		{"engine npipe", func(c *Config) { c.Engine.Host = "npipe:////./pipe/docker_engine" }, nil},
		{"engine unix without path", func(c *Config) { c.Engine.Host = "unix://" },
			[][]string{{"engine.host", `"unix://"`, "unix:///var/run/docker.sock"}}},
		{"engine ssh without host", func(c *Config) { c.Engine.Host = "ssh:///path" },
			[][]string{{"engine.host", `"ssh:///path"`, "no valid host"}}},
		{"engine upper-case scheme", func(c *Config) { c.Engine.Host = "TCP://x:2375" },
			[][]string{{"engine.host", `"TCP"`}}},
		{"cpus max", func(c *Config) { c.Limits.CPUs = maxCPUs }, nil},
		{"cpus over max", func(c *Config) { c.Limits.CPUs = maxCPUs * 2 }, [][]string{{"limits.cpus", "too large"}}},
		{"cpus -inf", func(c *Config) { c.Limits.CPUs = math.Inf(-1) }, [][]string{{"limits.cpus = -Inf", "negative"}}},
		{"memory exactly 6MiB in bytes", func(c *Config) { c.Limits.Memory = "6291456" }, nil},
		{"memory one byte short", func(c *Config) { c.Limits.Memory = "6291455" }, [][]string{{"limits.memory", `"6291455"`, "6 MiB"}}},
		{"memory negative", func(c *Config) { c.Limits.Memory = "-1g" }, [][]string{{"limits.memory", `"-1g"`, "not a size"}}},
		{"memory saturated", func(c *Config) { c.Limits.Memory = "9223372036854775807" }, [][]string{{"limits.memory", "too large"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.modify(&c)
			err := c.Validate()
			wantProblems(t, err, tc.want)
		})
	}
}

func TestNanoCPUs(t *testing.T) {
	cases := []struct {
		cpus float64
		want int64
	}{
		{0, 0},
		{1, 1_000_000_000},
		{0.5, 500_000_000},
		{0.1, 100_000_000}, // rounds, not truncates, 0.1*1e9
		{2.000000001, 2_000_000_001},
		{-1, 0},
		{math.NaN(), 0},
		{math.Inf(1), 0},
	}
	for _, tc := range cases {
		if got := (Limits{CPUs: tc.cpus}).NanoCPUs(); got != tc.want {
			t.Errorf("NanoCPUs(%v) = %d, want %d", tc.cpus, got, tc.want)
		}
	}
}

// wantProblems checks that err holds exactly len(want) problems, the i-th
// containing every string of want[i].
func wantProblems(t *testing.T, err error, want [][]string) {
	t.Helper()
	got := problems(err)
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d: %v", len(got), len(want), err)
	}
	for i, subs := range want {
		for _, s := range subs {
			if !strings.Contains(got[i].Error(), s) {
				t.Errorf("problem %d = %q\nwant it to contain %q", i, got[i], s)
			}
		}
	}
}
