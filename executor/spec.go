package executor

import (
	"io"
	"time"
)

// PullPolicy says where an image may come from; a Spec lists them in the
// order to try, as the runner's pull_policy does.
type PullPolicy string

const (
	PullAlways       PullPolicy = "always"
	PullIfNotPresent PullPolicy = "if-not-present"
	PullNever        PullPolicy = "never"
)

// DaemonSecurity selects the rights of the daemon container, the only
// container of a sandbox that gets elevated rights.
type DaemonSecurity string

const (
	// SecurityPrivileged is what docker:dind needs on a normal host.
	SecurityPrivileged DaemonSecurity = "privileged"
	// SecurityCapabilities is an explicit profile for hosts where
	// --privileged cannot apply its capability set (no CAP_SYS_RESOURCE in
	// the bounding set): every capability but SYS_RESOURCE, no
	// seccomp/apparmor confinement, all devices, the cgroup tree writable.
	SecurityCapabilities DaemonSecurity = "capabilities"
)

// Limits apply to every container of the sandbox; zero means unlimited.
type Limits struct {
	NanoCPUs    int64
	MemoryBytes int64
	Pids        int64
}

// ImageRef is an image with how to get it.
type ImageRef struct {
	Name     string
	Pull     []PullPolicy  // tried in order; empty means always
	Platform string        // "os/arch[/variant]"; empty: the Engine's own
	Auth     *RegistryAuth // credentials for the image's registry, or nil
}

// RegistryAuth is a login for one registry.
type RegistryAuth struct {
	Server   string
	Username string
	Password string
}

// Service is one of the job's services: a container on the job network
// reachable by its aliases.
type Service struct {
	Image      ImageRef
	Aliases    []string
	Entrypoint []string // nil: the image's own
	Command    []string // nil: the image's own
	Env        []string
}

// Spec is everything Prepare needs to build one job's sandbox.
type Spec struct {
	Identity Identity

	DaemonImage ImageRef
	BuildImage  ImageRef
	HelperImage ImageRef
	Services    []Service

	// BuildEntrypoint replaces the build image's entrypoint when non-nil;
	// []string{""} removes it (.gitlab-ci.yml entrypoint: [""]).
	BuildEntrypoint []string
	// BuildUser runs the build container (and owns the client key) as
	// this user; empty: the image's user.
	BuildUser string

	DaemonSecurity DaemonSecurity
	MTU            int           // 0: the outer default bridge's MTU
	ReadyTimeout   time.Duration // bound on the daemon answering over mutual TLS
	ServiceWait    time.Duration // bound on each service accepting TCP; 0: no wait
	CertLifetime   time.Duration // the job's timeout plus a margin

	// UsePool takes a warm daemon from the pool when one of this Spec's
	// kind is ready (never with a LayerCache: its data root is the project's).
	UsePool bool

	// LayerCache, when set (and the identity has a ProjectKey), puts the
	// daemon's data root on the project's layer volume.
	LayerCache *LayerCache

	BuildsDir  string   // volume mounted at the same path in build and helper
	CacheDir   string   // likewise
	ExtraBinds []string // operator's "host:container[:ro]" binds
	Limits     Limits

	// Log receives the lines meant for the job log (pull progress, steps).
	Log io.Writer
}

// Daemon certificates live in the official docker:dind DOCKER_TLS_CERTDIR
// layout, so the image's own entrypoint finds them and generates nothing.
const (
	CertDir          = "/certs"
	ClientCertDir    = CertDir + "/client"
	DaemonTLSPort    = 2376
	DaemonHostInJob  = "tcp://docker:2376"
	defaultBridgeMTU = 1500
)
