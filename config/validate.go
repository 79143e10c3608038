package config

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
)

// Limits enforced by Validate.
const (
	minMTU          = 576   // IPv4 minimum datagram size every host must accept
	maxMTU          = 65535 // largest IPv4 packet
	minReadyTimeout = time.Second
	maxReadyTimeout = time.Hour
	maxServiceWait  = time.Hour
	minMemoryBytes  = 6 * 1024 * 1024 // Docker refuses memory limits below 6 MiB
	maxServices     = 1000
	minLogBytes     = 1 << 20
	maxLogBytes     = 10 << 30
)

// Validate checks every key and returns all problems at once (errors.Join),
// so an operator fixes the file in one pass. Each message names the key, the
// bad value and what is allowed. It reads the files daemon.registry_certs
// names, and writes nothing.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	c.Engine.validate(add)
	c.Sandbox.validate(add)
	c.Daemon.validate(add)
	validateNetworkMTU(add, c.Daemon, c.Sandbox)
	c.Limits.validate(add)
	c.Policy.validate(add)
	c.Cache.validate(add)
	validateRootlessCache(add, c.Sandbox, c.Cache)
	c.Pool.validate(add)
	c.Audit.validate(add)
	c.Log.validate(add)
	return errors.Join(errs...)
}

// addFunc records one problem.
type addFunc func(format string, args ...any)

func (e Engine) validate(add addFunc) {
	e.validateTLS(add)
	if e.Host != "" && len(e.Hosts) > 0 {
		add("engine.host and engine.hosts are both set: use engine.host for one Engine, or list every Engine in engine.hosts")
	}
	key := "engine.host"
	if len(e.Hosts) > 0 {
		key = "engine.hosts"
	}
	seen := map[string]bool{}
	for _, host := range e.Endpoints() {
		validateEndpoint(key, host, add)
		if seen[host] {
			add("%s lists %q twice: each Engine once", key, host)
		}
		seen[host] = true
	}
}

func validateEndpoint(key, host string, add addFunc) {
	const allowed = "use unix://, tcp://, npipe:// or ssh://, or leave it empty to use DOCKER_HOST or the local socket"
	scheme, rest, ok := strings.Cut(host, "://")
	switch {
	case !ok:
		add("%s = %q has no scheme: %s", key, host, allowed)
	case scheme != "unix" && scheme != "tcp" && scheme != "npipe" && scheme != "ssh":
		add("%s = %q has scheme %q: %s", key, host, scheme, allowed)
	case rest == "":
		add("%s = %q has nothing after %s://: use e.g. %s", key, host, scheme, hostExample(scheme))
	case scheme == "tcp" || scheme == "ssh":
		// Only network endpoints need a parseable host; socket and pipe
		// paths are passed to the client as written.
		if u, err := url.Parse(host); err != nil || u.Host == "" {
			add("%s = %q has no valid host: use e.g. %s", key, host, hostExample(scheme))
		}
	}
}

// validateTLS checks that the Engine's TLS files are there when asked for;
// whether they are the right ones only the Engine can tell (at connect).
func (e Engine) validateTLS(add addFunc) {
	if e.TLSCertPath == "" {
		if e.TLSVerify {
			add("engine.tls_verify = true needs engine.tls_cert_path: a directory with ca.pem, cert.pem and key.pem")
		}
		return
	}
	if !slices.ContainsFunc(e.Endpoints(), func(h string) bool { return strings.HasPrefix(h, "tcp://") }) {
		if len(e.Hosts) > 0 {
			add("engine.tls_cert_path is set but no Engine in engine.hosts is tcp://: TLS applies to tcp:// Engines, e.g. tcp://docker.example.com:2376")
		} else {
			add("engine.tls_cert_path is set but engine.host = %q is not tcp://: TLS applies to a tcp:// Engine, e.g. tcp://docker.example.com:2376", e.Host)
		}
	}
	if !filepath.IsAbs(e.TLSCertPath) {
		add("engine.tls_cert_path = %q is not an absolute path", e.TLSCertPath)
		return
	}
	for _, name := range []string{"ca.pem", "cert.pem", "key.pem"} {
		path := filepath.Join(e.TLSCertPath, name)
		info, err := os.Stat(path)
		switch {
		case err != nil:
			add("engine.tls_cert_path: %s cannot be read (%v): put the Engine's CA in ca.pem and this runner's client certificate and key in cert.pem and key.pem there", path, err)
		case !info.Mode().IsRegular():
			add("engine.tls_cert_path: %s is not a regular file", path)
		}
	}
}

func hostExample(scheme string) string {
	switch scheme {
	case "unix":
		return "unix:///var/run/docker.sock"
	case "npipe":
		return "npipe:////./pipe/docker_engine"
	case "ssh":
		return "ssh://user@docker.example.com"
	default:
		return "tcp://docker.example.com:2376"
	}
}

func (s Sandbox) validate(add addFunc) {
	validateImage(add, "sandbox.dind_image", s.DindImage, true)
	validateImage(add, "sandbox.default_image", s.DefaultImage, true)
	validateImage(add, "sandbox.helper_image", s.HelperImage, false)

	switch s.DaemonSecurity {
	case DaemonSecurityPrivileged, DaemonSecurityCapabilities, DaemonSecurityRootless:
	default:
		add("sandbox.daemon_security = %q is not supported: use %q, %q or %q",
			s.DaemonSecurity, DaemonSecurityPrivileged, DaemonSecurityCapabilities, DaemonSecurityRootless)
	}

	if s.PlainTCP != PlainTCPBuildOnly && s.PlainTCP != PlainTCPRefuse {
		add("sandbox.plain_tcp = %q is not supported: use %q (a job written with TLS off gets port 2375, for its build container only) or %q (such a job fails, told to use mutual TLS)",
			s.PlainTCP, PlainTCPBuildOnly, PlainTCPRefuse)
	}

	validatePullPolicy(add, s.PullPolicy)

	if s.MTU != 0 && (s.MTU < minMTU || s.MTU > maxMTU) {
		add("sandbox.mtu = %d is out of range: use 0 (take the outer network's MTU) or %d..%d", s.MTU, minMTU, maxMTU)
	}

	if d := s.ReadyTimeout.Duration; d < minReadyTimeout || d > maxReadyTimeout {
		add("sandbox.ready_timeout = %q is out of range: use %s..%s", d, "1s", "1h")
	}
	if d := s.WaitForServicesTimeout.Duration; d < 0 || d > maxServiceWait {
		add("sandbox.wait_for_services_timeout = %q is out of range: use 0s (do not wait) up to 1h", d)
	}

	validateDirs(add, s.BuildsDir, s.CacheDir)
	validateVolumes(add, s.Volumes, s.BuildsDir, s.CacheDir)
}

// validateImage catches malformed references at startup instead of as a
// "invalid reference format" pull error in every job.
func validateImage(add addFunc, key, image string, required bool) {
	if image == "" {
		if required {
			add("%s is empty: name an image, e.g. %q", key, exampleImage(key))
		}
		return
	}
	if _, err := reference.ParseNormalizedNamed(image); err != nil {
		add("%s = %q is not a valid image reference (%v): use e.g. %q", key, image, err, exampleImage(key))
	}
}

func exampleImage(key string) string {
	switch key {
	case "sandbox.dind_image":
		return Default().Sandbox.DindImage
	case "sandbox.helper_image":
		return "registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper:x86_64-v17.0.0"
	default:
		return Default().Sandbox.DefaultImage
	}
}

func validatePullPolicy(add addFunc, policies []PullPolicy) {
	const allowed = "always, if-not-present, never"
	if len(policies) == 0 {
		add("sandbox.pull_policy is empty: list at least one of %s", allowed)
		return
	}
	seen := make(map[PullPolicy]bool, len(policies))
	for i, p := range policies {
		switch p {
		case PullAlways, PullIfNotPresent, PullNever:
		default:
			add("sandbox.pull_policy[%d] = %q is not a pull policy: use one of %s", i, p, allowed)
			continue
		}
		if seen[p] {
			add("sandbox.pull_policy[%d] = %q is listed twice: list each policy once", i, p)
		}
		seen[p] = true
	}
}

// validateDirs checks builds_dir and cache_dir: they become separate volume
// mounts in the build container, so they must not overlap each other or the
// certificates mount.
func validateDirs(add addFunc, buildsDir, cacheDir string) {
	ok := true
	for _, d := range []struct{ key, dir, example string }{
		{"sandbox.builds_dir", buildsDir, "/builds"},
		{"sandbox.cache_dir", cacheDir, "/cache"},
	} {
		if !path.IsAbs(d.dir) {
			add("%s = %q is not an absolute path: use a path such as %q", d.key, d.dir, d.example)
			ok = false
			continue
		}
		clean := path.Clean(d.dir)
		if within(CertsDir, clean) || within(clean, CertsDir) {
			add("%s = %q overlaps %s, where the sandbox's TLS certificates are mounted: use a path outside it", d.key, d.dir, CertsDir)
		}
	}
	if !ok {
		return
	}
	b, c := path.Clean(buildsDir), path.Clean(cacheDir)
	switch {
	case b == c:
		add("sandbox.builds_dir and sandbox.cache_dir are both %q: use two different paths", b)
	case within(c, b):
		add("sandbox.cache_dir = %q is inside sandbox.builds_dir = %q: use paths that do not contain each other", cacheDir, buildsDir)
	case within(b, c):
		add("sandbox.builds_dir = %q is inside sandbox.cache_dir = %q: use paths that do not contain each other", buildsDir, cacheDir)
	}
}

// validateVolumes checks each "host:container[:ro|rw]" bind. A bind on or
// above a reserved path would hide that mount from the job.
func validateVolumes(add addFunc, volumes []string, buildsDir, cacheDir string) {
	reserved := []struct{ dir, what string }{
		{CertsDir, "the sandbox's TLS certificates"},
		{buildsDir, "sandbox.builds_dir, the job's builds volume"},
		{cacheDir, "sandbox.cache_dir, the job's cache volume"},
	}
	seen := make(map[string]int, len(volumes))
	for i, v := range volumes {
		key := fmt.Sprintf("sandbox.volumes[%d]", i)
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 {
			add("%s = %q is not a bind: use \"host:container\", \"host:container:ro\" or \"host:container:rw\"", key, v)
			continue
		}
		host, ctr := parts[0], parts[1]
		if len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw" {
			add("%s = %q has mode %q: use ro or rw, or leave the mode out", key, v, parts[2])
		}
		if !path.IsAbs(host) {
			add("%s = %q has host path %q: use an absolute path", key, v, host)
		}
		if !path.IsAbs(ctr) {
			add("%s = %q has container path %q: use an absolute path", key, v, ctr)
			continue
		}
		ctr = path.Clean(ctr)
		var hides []string
		for _, r := range reserved {
			if path.IsAbs(r.dir) && within(path.Clean(r.dir), ctr) {
				hides = append(hides, fmt.Sprintf("%s (%s)", path.Clean(r.dir), r.what))
			}
		}
		if len(hides) > 0 {
			add("%s = %q mounts over %s: pick a container path that is not, and does not contain, %s, %s or %s",
				key, v, strings.Join(hides, ", "), CertsDir, buildsDir, cacheDir)
		}
		if j, dup := seen[ctr]; dup {
			add("%s = %q mounts on %s like sandbox.volumes[%d]: Docker allows one bind per container path", key, v, ctr, j)
		} else {
			seen[ctr] = i
		}
	}
}

func (l Limits) validate(add addFunc) {
	switch {
	case math.IsNaN(l.CPUs):
		add("limits.cpus = nan is not a number: use 0 (unlimited) or a positive number such as 1.5")
	case l.CPUs < 0:
		add("limits.cpus = %v is negative: use 0 (unlimited) or a positive number such as 1.5", l.CPUs)
	case l.CPUs > maxCPUs:
		add("limits.cpus = %v is too large: use 0 (unlimited) or at most %v", l.CPUs, float64(maxCPUs))
	}

	if l.Memory != "" {
		// RAMInBytes rejects negative input but converts float to int64
		// unchecked, so overflow ("1e30g") comes back negative on amd64
		// and saturated on arm64.
		n, err := units.RAMInBytes(l.Memory)
		switch {
		case err != nil:
			add("limits.memory = %q is not a size: use e.g. \"512m\" or \"4g\", or leave it empty for unlimited", l.Memory)
		case n < 0 || n == math.MaxInt64:
			add("limits.memory = %q is too large: use e.g. \"512m\" or \"4g\", or leave it empty for unlimited", l.Memory)
		case n < minMemoryBytes:
			add("limits.memory = %q is below Docker's minimum of 6 MiB: use at least \"6m\", or leave it empty for unlimited", l.Memory)
		}
	}

	if l.PIDs < 0 {
		add("limits.pids = %d is negative: use 0 (unlimited) or a positive number", l.PIDs)
	}
	if l.LogSize != "" {
		n, err := units.RAMInBytes(l.LogSize)
		switch {
		case err != nil:
			add("limits.log_size = %q is not a size: use e.g. \"20m\", or leave it empty for the Engine's own log driver and options", l.LogSize)
		case n < minLogBytes || n > maxLogBytes:
			add("limits.log_size = %q is out of range: use 1m..10g, or leave it empty for the Engine's own log driver and options", l.LogSize)
		}
	}
	if l.Services < 0 || l.Services > maxServices {
		add("limits.services = %d is out of range: use 0 (unlimited) or 1..%d", l.Services, maxServices)
	}
}

// within reports whether p is dir or below it; both must be clean and absolute.
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}
