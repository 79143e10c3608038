// Package config is the operator's config file for dind-executor: its schema
// (types.go), defaults (default.go), validation (validate.go), strict loading
// (load.go) and where the file is looked up (lookup.go).
package config

import "math"

// Config is the whole config file. The toml tags are the key names
// operators' files use and the README's config reference documents;
// renaming one breaks those files.
type Config struct {
	Engine  Engine  `toml:"engine"`
	Sandbox Sandbox `toml:"sandbox"`
	Daemon  Daemon  `toml:"daemon"`
	Limits  Limits  `toml:"limits"`
	Policy  Policy  `toml:"policy"`
	Cache   Cache   `toml:"cache"`
	Pool    Pool    `toml:"pool"`
	Audit   Audit   `toml:"audit"`
	Log     Log     `toml:"log"`
}

// Engine is the outer Docker Engine that runs the sandboxes.
type Engine struct {
	// Host is the Engine endpoint. Empty means the Docker client's own
	// resolution: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH or the
	// local socket.
	Host string `toml:"host"`
	// Hosts are several Engines behind one runner (build hosts): each
	// job's sandbox is placed on one of them. Exclusive with Host.
	Hosts []string `toml:"hosts"`
	// TLSCertPath is a directory with ca.pem, cert.pem and key.pem for a
	// tcp:// host, as the docker executor's tls_cert_path.
	TLSCertPath string `toml:"tls_cert_path"`
	// TLSVerify checks the Engine's certificate against ca.pem (the
	// docker CLI's DOCKER_TLS_VERIFY); false still presents cert.pem.
	TLSVerify bool `toml:"tls_verify"`
}

// Endpoints are the Engines sandboxes go to: Hosts, or Host alone; none
// means the Docker client's own resolution.
func (e Engine) Endpoints() []string {
	if len(e.Hosts) > 0 {
		return e.Hosts
	}
	if e.Host != "" {
		return []string{e.Host}
	}
	return nil
}

// Sandbox describes the per-job Docker-in-Docker sandbox.
type Sandbox struct {
	DindImage    string `toml:"dind_image"`
	DefaultImage string `toml:"default_image"` // used when the job names no image
	// HelperImage empty means the gitlab-runner-helper image matching the
	// runner version found in the job environment.
	HelperImage    string       `toml:"helper_image"`
	DaemonSecurity string       `toml:"daemon_security"`
	PullPolicy     []PullPolicy `toml:"pull_policy"` // tried in order
	MTU            int          `toml:"mtu"`         // 0: take the outer network's MTU
	ReadyTimeout   Duration     `toml:"ready_timeout"`
	// Volumes are extra "host:container[:ro|rw]" binds for the build and
	// helper containers.
	Volumes   []string `toml:"volumes"`
	BuildsDir string   `toml:"builds_dir"`
	CacheDir  string   `toml:"cache_dir"`
	// WaitForServicesTimeout bounds the wait for each job service to accept
	// TCP on an exposed port; 0 skips the wait (the runner's -1).
	WaitForServicesTimeout Duration `toml:"wait_for_services_timeout"`
	// PlainTCP is what a job written with TLS off (DOCKER_HOST on port
	// 2375) gets: PlainTCPBuildOnly or PlainTCPRefuse.
	PlainTCP string `toml:"plain_tcp"`
}

// Limits apply to every container of a sandbox.
type Limits struct {
	CPUs   float64 `toml:"cpus"`   // 0: unlimited
	Memory string  `toml:"memory"` // as written, e.g. "4g"; empty: unlimited
	// MemoryBytes is Memory in bytes, filled by Parse/Load; it is not a key.
	MemoryBytes int64 `toml:"-"`
	PIDs        int64 `toml:"pids"` // 0: unlimited
	// Services bounds a job's services: entries that become containers
	// (a dind service is the sandbox's own daemon). Each service gets the
	// limits above of its own, so the count bounds what a job takes.
	Services int `toml:"services"` // 0: unlimited
	// LogSize bounds what each sandbox container's output takes on the
	// Engine host (Docker's local log driver, one rotation); empty: the
	// Engine's own log driver and options.
	LogSize string `toml:"log_size"`
	// LogSizeBytes is LogSize in bytes, filled by Parse/Load; not a key.
	LogSizeBytes int64 `toml:"-"`
}

// Audit is the executor's audit trail.
type Audit struct {
	// Path is the JSON Lines file every hook and gc appends to.
	Path string `toml:"path"`
}

// Log is the executor's own log (never the job's output).
type Log struct {
	Format string `toml:"format"` // "text" or "json"
	Level  string `toml:"level"`  // trace, debug, info, warning, error
	// File receives the log; empty means stderr, which the runner copies
	// into the job log for prepare and run.
	File string `toml:"file"`
}

// Values of log.format.
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// DefaultAuditPath is where the trail goes when [audit] path is not set.
const DefaultAuditPath = "/var/log/dind-executor/audit.jsonl"

// Policy is what jobs may ask for, matched as GitLab Runner matches its own
// allowed_* settings. An empty list allows anything; a job can narrow what
// is allowed (its own pull_policy list), never widen it.
type Policy struct {
	// AllowedImages and AllowedServices are doublestar globs matched
	// against the job's image and service names, e.g. "docker:*" or
	// "registry.example.com/**".
	AllowedImages   []string `toml:"allowed_images"`
	AllowedServices []string `toml:"allowed_services"`
	// AllowedPullPolicies are the pull policies a job may request; empty
	// means the sandbox.pull_policy list.
	AllowedPullPolicies []PullPolicy `toml:"allowed_pull_policies"`
	// AllowedUsers are the users a job may run its build container as
	// (image: docker: user:); empty allows any.
	AllowedUsers []string `toml:"allowed_users"`
	// AllowedDinDImages are doublestar globs for the dind service images a
	// job may pin as its daemon image (services: docker:24.0.5-dind).
	// Unlike the other lists, empty allows none: the daemon container is
	// the sandbox's privileged one, so the operator's dind_image serves
	// every job unless the operator opts in.
	AllowedDinDImages []string `toml:"allowed_dind_images"`
}

// Values of sandbox.daemon_security.
const (
	DaemonSecurityPrivileged   = "privileged"
	DaemonSecurityCapabilities = "capabilities"
	// DaemonSecurityRootless runs dockerd as a non-root user inside a user
	// namespace (rootlesskit), in a container that is not privileged; the
	// dind image must be a rootless one (docker:dind-rootless layout).
	DaemonSecurityRootless = "rootless"
)

// Values of sandbox.plain_tcp.
const (
	// PlainTCPBuildOnly serves such a job a plain endpoint that only its
	// build container reaches.
	PlainTCPBuildOnly = "build-only"
	// PlainTCPRefuse fails such a job at prepare, saying what to change.
	PlainTCPRefuse = "refuse"
)

// PullPolicy is one entry of sandbox.pull_policy.
type PullPolicy string

// Values of PullPolicy, with GitLab Runner's spelling so .gitlab-ci.yml
// pull_policy values can be compared directly.
const (
	PullAlways       PullPolicy = "always"
	PullIfNotPresent PullPolicy = "if-not-present"
	PullNever        PullPolicy = "never"
)

// CertsDir is where the sandbox daemon's TLS client certificates are mounted
// in the build and helper containers, so volumes must not cover it.
const CertsDir = "/certs"

// NanoCPUs is CPUs in the unit of Docker's HostConfig.NanoCPUs; 0 means
// unlimited. Meaningful only for a validated Config.
func (l Limits) NanoCPUs() int64 {
	if !(l.CPUs > 0) || l.CPUs > maxCPUs { // also guards NaN and overflow
		return 0
	}
	return int64(math.Round(l.CPUs * 1e9))
}

// maxCPUs is far above any host yet keeps CPUs*1e9 well within int64.
const maxCPUs = 1e6
