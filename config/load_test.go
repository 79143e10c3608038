package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fixtures returns testdata files whose names start with prefix.
func fixtures(t testing.TB, prefix string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", prefix+"*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no testdata/%s*.toml fixtures", prefix)
	}
	return paths
}

// problems splits an error from Parse/Load/Validate into its reports.
func problems(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestLoadFixtures(t *testing.T) {
	for _, path := range fixtures(t, "valid-") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			c, err := Load(path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("loaded config does not validate: %v", err)
			}
		})
	}
	for _, path := range fixtures(t, "invalid-") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			c, err := Load(path)
			if err == nil {
				t.Fatalf("Load succeeded, want an error; got %+v", c)
			}
			if !reflect.DeepEqual(c, Config{}) {
				t.Errorf("Load returned a config with its error: %+v", c)
			}
		})
	}
}

// TestInvalidFixtures checks each invalid fixture reports exactly the
// expected problems, and that each message names the key and the bad value.
func TestInvalidFixtures(t *testing.T) {
	cases := map[string]struct {
		count int
		want  [][]string // per problem, in order: substrings it must contain
	}{
		"invalid-unknown-key.toml": {1, [][]string{
			{`unknown key "sandbox.dind_imag" in testdata/invalid-unknown-key.toml: check the spelling against the config reference in the README`}}},
		"invalid-unknown-table.toml":  {1, [][]string{{`unknown key "runners"`}}},
		"invalid-wrong-case-key.toml": {1, [][]string{{`unknown key "sandbox.DIND_IMAGE"`, `did you mean "sandbox.dind_image"?`}}},
		"invalid-syntax.toml":         {1, [][]string{{"cannot parse TOML in testdata/invalid-syntax.toml", "line 2"}}},
		"invalid-type-mtu.toml":       {1, [][]string{{"sandbox.mtu", "string", "integer"}}},
		"invalid-pull-policy-string.toml": {1, [][]string{
			{"sandbox.pull_policy", "string", "slice"}}},
		"invalid-types-mixed.toml": {5, [][]string{
			{"sandbox.mtu", "line 3", "string", "integer"},
			{"sandbox.ready_timeout", "line 4", `"a minute"`, `"60s"`},
			{"limits.cpus", "line 8", "string", "float"},
			{"sandbox.daemon_security", `"root"`},
			{"limits.pids = -1"}}},
		"invalid-duration-integer.toml": {1, [][]string{{"sandbox.ready_timeout", `"60"`, `"60s"`}}},
		"invalid-duration-garbage.toml": {1, [][]string{{"sandbox.ready_timeout", `"a minute"`, `"60s"`}}},
		"invalid-images-empty.toml": {2, [][]string{
			{"sandbox.dind_image is empty", "docker:27-dind"},
			{"sandbox.default_image is empty", "docker:27-cli"}}},
		"invalid-image-reference.toml": {2, [][]string{
			{"sandbox.dind_image", `"Docker:27-dind"`, "lowercase"},
			{"sandbox.helper_image", `"gitlab-runner-helper:x86 64"`, "not a valid image reference"}}},
		"invalid-engine-tls.toml": {4, [][]string{
			{"engine.tls_cert_path", "is set but engine.host", "is not tcp://"},
			{"/nonexistent/engine-certs/ca.pem cannot be read"},
			{"/nonexistent/engine-certs/cert.pem cannot be read"},
			{"/nonexistent/engine-certs/key.pem cannot be read"}}},
		"invalid-engine-tls-verify.toml": {1, [][]string{
			{"engine.tls_verify = true needs engine.tls_cert_path"}}},
		"invalid-plain-tcp.toml": {1, [][]string{
			{"sandbox.plain_tcp", `"yes"`, `"build-only"`, `"refuse"`}}},
		"invalid-daemon-security.toml": {1, [][]string{
			{"sandbox.daemon_security", `"rootful"`, `"privileged"`, `"capabilities"`, `"rootless"`}}},
		"invalid-pull-policy-empty.toml": {1, [][]string{
			{"sandbox.pull_policy is empty: list at least one of always, if-not-present, never"}}},
		"invalid-pull-policy-values.toml": {2, [][]string{
			{"sandbox.pull_policy[1]", `"alwayz"`, "always, if-not-present, never"},
			{"sandbox.pull_policy[2]", `"always"`, "twice"}}},
		"invalid-policy.toml": {6, [][]string{
			{"sandbox.wait_for_services_timeout", `"-1s"`, "0s"},
			{"policy.allowed_images[0]", `"docker:["`, "glob"},
			{"policy.allowed_images[1]", `""`, "glob"},
			{"policy.allowed_pull_policies[0]", `"sometimes"`, "if-not-present"},
			{"policy.allowed_users[0]", "empty"},
			{"policy.allowed_dind_images[0]", `"docker:[0-9"`, "glob"},
		}},
		"invalid-pool.toml": {1, [][]string{{"pool.size", "-1", "0 (no pool) to 16"}}},
		"invalid-cache.toml": {2, [][]string{
			{"cache.layers", `"global"`, `"project"`},
			{"cache.max_size", `"1m"`, "64m"},
		}},
		"invalid-mtu.toml":                 {1, [][]string{{"sandbox.mtu = 100", "0 (take the outer network's MTU)", "576..65535"}}},
		"invalid-ready-timeout-short.toml": {1, [][]string{{"sandbox.ready_timeout", `"500ms"`, "1s..1h"}}},
		"invalid-ready-timeout-long.toml":  {1, [][]string{{"sandbox.ready_timeout", `"2h0m0s"`, "1s..1h"}}},
		"invalid-volumes.toml": {8, [][]string{
			{"sandbox.volumes[0]", `"/srv/data"`, `"host:container"`},
			{"sandbox.volumes[1]", `"srv:/data"`, `host path "srv"`, "absolute"},
			{"sandbox.volumes[2]", `"/srv:data:ro"`, `container path "data"`, "absolute"},
			{"sandbox.volumes[3]", `"/srv:/mode:rx"`, `"rx"`, "ro or rw"},
			{"sandbox.volumes[4]", `"/srv/certs:/certs"`, "/certs (the sandbox's TLS certificates)"},
			{"sandbox.volumes[5]", `"/srv/b:/builds/"`, "/builds (sandbox.builds_dir, the job's builds volume)"},
			{"sandbox.volumes[6]", `"/srv/root:/"`, "/certs (", "/builds (", "/cache ("},
			{"sandbox.volumes[8]", `"/srv/y:/opt/x"`, "sandbox.volumes[7]", "one bind per container path"}}},
		"invalid-dirs-relative.toml": {2, [][]string{
			{"sandbox.builds_dir", `"builds"`, "absolute", `"/builds"`},
			{"sandbox.cache_dir", `"cache"`, "absolute", `"/cache"`}}},
		"invalid-dirs-same.toml": {1, [][]string{{"sandbox.builds_dir", "sandbox.cache_dir", `"/work"`, "two different paths"}}},
		"invalid-dirs-nested.toml": {1, [][]string{
			{`sandbox.cache_dir = "/work/cache" is inside sandbox.builds_dir = "/work"`}}},
		"invalid-dirs-certs.toml": {1, [][]string{{"sandbox.builds_dir", `"/certs/builds"`, "outside"}}},
		"invalid-limits.toml": {3, [][]string{
			{"limits.cpus = -1", "0 (unlimited)"},
			{"limits.memory", `"4m"`, "6 MiB"},
			{"limits.pids = -1", "0 (unlimited)"}}},
		"invalid-limits-nonsense.toml": {2, [][]string{
			{"limits.cpus = nan", "positive number"},
			{"limits.memory", `"lots"`, `"4g"`}}},
		"invalid-limits-huge.toml": {4, [][]string{
			{"limits.cpus = +Inf", "too large"},
			{"limits.memory", `"1e30g"`, "too large"},
			{"limits.log_size", `"1e30g"`, "out of range", "1m..10g"},
			{"limits.services = -1", "out of range", "0 (unlimited) or 1..1000"}}},
		"invalid-engine-scheme.toml": {1, [][]string{
			{"engine.host", `"http://docker.example.com:2375"`, `"http"`, "unix://, tcp://, npipe:// or ssh://"}}},
		"invalid-engine-no-scheme.toml": {1, [][]string{
			{"engine.host", `"docker.example.com:2375"`, "no scheme", "unix://, tcp://, npipe:// or ssh://"}}},
		"invalid-engine-no-host.toml": {1, [][]string{{"engine.host", `"tcp://"`}}},
		"invalid-audit-log.toml": {4, [][]string{
			{"audit.path", `"audit.jsonl"`, "absolute", "/var/log/dind-executor/audit.jsonl"},
			{"log.format", `"xml"`, `"text"`, `"json"`},
			{"log.level", `"loud"`, "trace, debug, info, warning or error"},
			{"log.file", `"logs/"`, "absolute", "empty for stderr"}}},
		"invalid-audit-log-unknown.toml": {2, [][]string{
			{`unknown key "audit.rotate"`},
			{`unknown key "log.colour"`}}},
		"invalid-daemon.toml": {20, [][]string{
			{"daemon.registry_mirrors[0]", `"mirror.example.com"`, "not an http(s) URL", `"https://mirror.example.com"`},
			{"daemon.registry_mirrors[1]", `"ftp://mirror.example.com"`, "not an http(s) URL"},
			{"daemon.registry_mirrors[2]", `"https://bob:xxxxx@mirror.example.com"`, "user name or password"},
			{"daemon.registry_mirrors[3]", "query or fragment"},
			{"daemon.insecure_registries[0]", `"http://registry.internal:5000"`, "has a scheme", "host[:port]"},
			{"daemon.insecure_registries[1]", `"10.0.0.0/33"`, "not a CIDR range"},
			{"daemon.insecure_registries[2]", `"registry.internal:99999"`, `port "99999"`, "1..65535"},
			{`daemon.registry_certs["https://registry.internal"]`, "not host[:port]", "/etc/docker/certs.d/<registry>"},
			{`daemon.registry_certs["https://registry.internal"] = "relative/ca.pem"`, "not an absolute path"},
			{`daemon.registry_certs["registry.internal:5000"] = "/nonexistent/dind-executor-test/ca.pem"`, "cannot be read", "no such file or directory"},
			{"daemon.http_proxy", `"proxy.example.com:3128"`, "not a proxy URL", "with its scheme"},
			{"daemon.https_proxy", `"ftp://proxy.example.com"`, `scheme "ftp"`, "http, https, socks5"},
			{"daemon.dns[0]", `"dns.example.com"`, "not an IP address"},
			{"daemon.extra_hosts[0]", `"gitlab.internal=10.0.0.7"`, "not host:ip", `"host:ip"`},
			{"daemon.extra_hosts[1]", `"gitlab.internal"`, "not host:ip"},
			{"daemon.extra_hosts[2]", `"docker:10.0.0.8"`, "sandbox's own daemon", "pick another name"},
			{"daemon.extra_hosts[3]", `"v6:[fd00::7]"`, "without brackets", `"v6:fd00::7"`},
			{"daemon.extra_hosts[4]", `"x:not-an-ip"`, "not an IP address"},
			{"daemon.features", `"bad name"`, "letters, digits"},
			{"daemon.network_mtu = 1500", "larger than sandbox.mtu = 1400", "at most 1400"}}},
		"invalid-everything.toml": {11, [][]string{
			{`unknown key "sandbox.dind_imag"`},
			{"engine.host", `"http://x"`},
			{"sandbox.dind_image is empty"},
			{"sandbox.daemon_security", `"root"`},
			{"sandbox.pull_policy[0]", `"sometimes"`},
			{"sandbox.mtu = 70000"},
			{"sandbox.ready_timeout", `"0s"`},
			{"sandbox.volumes[0]", `"/a:/cache"`, "sandbox.cache_dir"},
			{"limits.cpus = -2"},
			{"limits.memory", `"1k"`},
			{"limits.pids = -5"}}},
	}

	// Every invalid fixture must be described here, and vice versa, so a new
	// fixture cannot pass just by producing some error.
	onDisk := map[string]bool{}
	for _, p := range fixtures(t, "invalid-") {
		onDisk[filepath.Base(p)] = true
		if _, ok := cases[filepath.Base(p)]; !ok {
			t.Errorf("fixture %s has no entry in this table", p)
		}
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if !onDisk[name] {
				t.Fatalf("no fixture testdata/%s", name)
			}
			if len(tc.want) != tc.count {
				t.Fatalf("table entry lists %d messages for %d problems", len(tc.want), tc.count)
			}
			_, err := Load(filepath.Join("testdata", name))
			got := problems(err)
			if len(got) != tc.count {
				t.Fatalf("got %d problems, want %d:\n%v", len(got), tc.count, err)
			}
			for i, subs := range tc.want {
				for _, s := range subs {
					if !strings.Contains(got[i].Error(), s) {
						t.Errorf("problem %d = %q\nwant it to contain %q", i, got[i], s)
					}
				}
			}
			if !strings.Contains(err.Error(), "testdata/"+name) {
				t.Errorf("error does not name the file: %v", err)
			}
		})
	}
}

func TestParseKeepsDefaults(t *testing.T) {
	data, err := os.ReadFile("testdata/valid-partial.toml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Sandbox.PullPolicy = []PullPolicy{PullNever}
	want.Limits.Memory = "6m"
	want.Limits.MemoryBytes = 6 << 20
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(valid-partial) =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseFull(t *testing.T) {
	got, err := Load("testdata/valid-full.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Engine: Engine{Host: "tcp://docker.example.com:2376"},
		Sandbox: Sandbox{
			DindImage:              "registry.example.com:5000/mirror/docker:27.3-dind",
			DefaultImage:           "alpine:3.20",
			HelperImage:            "registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper:x86_64-v17.5.0",
			DaemonSecurity:         DaemonSecurityCapabilities,
			PullPolicy:             []PullPolicy{PullIfNotPresent, PullAlways},
			MTU:                    1400,
			ReadyTimeout:           Duration{150 * time.Second},
			Volumes:                []string{"/srv/ca:/etc/ssl/extra:ro", "/srv/tools:/opt/tools", "/srv/out:/out:rw"},
			BuildsDir:              "/work/builds",
			CacheDir:               "/work/cache",
			WaitForServicesTimeout: Duration{30 * time.Second},
			PlainTCP:               PlainTCPBuildOnly,
		},
		Limits: Limits{CPUs: 1.5, Memory: "4g", MemoryBytes: 4 << 30, PIDs: 2048, Services: 4, LogSize: "5m", LogSizeBytes: 5 << 20},
		Audit:  Audit{Path: DefaultAuditPath},
		Log:    Log{Format: LogFormatText, Level: "warning"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load(valid-full) =\n%+v\nwant\n%+v", got, want)
	}
	if n := got.Limits.NanoCPUs(); n != 1_500_000_000 {
		t.Errorf("NanoCPUs() = %d, want 1500000000", n)
	}
}

func TestParseWithoutSource(t *testing.T) {
	_, err := Parse([]byte("[sandbox]\ndind_imag = \"x\"\n"))
	want := `unknown key "sandbox.dind_imag": check the spelling against the config reference in the README`
	if got := problems(err); len(got) != 1 || got[0].Error() != want {
		t.Errorf("Parse error = %v, want the single problem %q", err, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.toml")
	_, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	if err != nil && !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
}

// TestSchemaKeys pins the key names of the README's config reference, so a
// renamed toml tag fails here rather than in operators' files.
func TestSchemaKeys(t *testing.T) {
	want := []string{
		"engine", "engine.host", "engine.hosts", "engine.tls_cert_path", "engine.tls_verify",
		"sandbox", "sandbox.dind_image", "sandbox.default_image", "sandbox.helper_image",
		"sandbox.daemon_security", "sandbox.pull_policy", "sandbox.mtu", "sandbox.ready_timeout",
		"sandbox.volumes", "sandbox.builds_dir", "sandbox.cache_dir", "sandbox.wait_for_services_timeout", "sandbox.plain_tcp",
		"limits", "limits.cpus", "limits.memory", "limits.pids", "limits.services", "limits.log_size",
		"cache", "cache.layers", "cache.max_size", "pool", "pool.size",
		"policy", "policy.allowed_images", "policy.allowed_services", "policy.allowed_pull_policies", "policy.allowed_users", "policy.allowed_dind_images",
		"audit", "audit.path", "log", "log.format", "log.level", "log.file",
		"daemon", "daemon.registry_mirrors", "daemon.insecure_registries", "daemon.registry_certs",
		"daemon.http_proxy", "daemon.https_proxy", "daemon.no_proxy", "daemon.dns", "daemon.extra_hosts",
		"daemon.network_mtu", "daemon.features",
	}
	got := schemaKeys()
	if len(got) != len(want) {
		t.Errorf("schema has %d keys, want %d: %v", len(got), len(want), got)
	}
	for _, k := range want {
		if !got[k] {
			t.Errorf("schema lacks key %q", k)
		}
	}
}
