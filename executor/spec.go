package executor

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"gitlab.com/dind-executor/dind-executor/config"
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
	// LogBytes bounds each container's log on the Engine host; 0: the
	// Engine's own log driver and options.
	LogBytes int64
}

// ImageRef is an image with how to get it.
type ImageRef struct {
	Name     string
	Pull     []PullPolicy  // tried in order; empty means always
	Platform string        // "os/arch[/variant]"; empty: the Engine's own
	Auth     *RegistryAuth // credentials for the image's registry, or nil
	// ID is the image id Prepare resolved Name to. Containers are created
	// from it, never from the tag: another job pulling the same tag (for
	// another platform, say) in between cannot change what runs here.
	ID string
}

// createRef is what a container is created from: the resolved id when
// there is one.
func (r ImageRef) createRef() (ref, platform string) {
	if r.ID != "" {
		return r.ID, ""
	}
	return r.Name, r.Platform
}

// pinned is p with every image resolved to its id in ids (name -> id).
func (p plan) pinned(ids map[string]string) plan {
	p.Daemon.Image.ID = ids[p.Daemon.Image.Name]
	p.BuildImage.ID = ids[p.BuildImage.Name]
	p.HelperImage.ID = ids[p.HelperImage.Name]
	p.Services = slices.Clone(p.Services)
	for i := range p.Services {
		p.Services[i].Image.ID = ids[p.Services[i].Image.Name]
	}
	return p
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

// Settings are the operator's, the same for every sandbox of this
// executor: how daemons are made, where volumes go, limits, caches, pool.
type Settings struct {
	Daemon      DaemonSpec
	BuildsDir   string   // volume mounted at the same path in build and helper
	CacheDir    string   // likewise
	ExtraBinds  []string // operator's "host:container[:ro]" binds
	Limits      Limits
	ServiceWait time.Duration // bound on each service accepting TCP; 0: no wait
	// LayerCache, when set (and the job's identity has a ProjectKey), puts
	// the daemon's data root on the project's layer volume.
	LayerCache *LayerCache
	// RelayBinary is a statically linked dind-executor for the daemon's
	// architecture, copied into the daemon container of a job given a
	// plain endpoint (Spec.PlainTCP); empty: such jobs cannot be served.
	RelayBinary string
	// PoolSize is how many warm daemons to keep (0: no pool). Prepare
	// takes one when it can (never with a LayerCache: its data root must be
	// the project's).
	PoolSize int
	// ExtraHosts are "host:ip" entries for /etc/hosts of every container
	// of the sandbox: the daemon, build, helper and services.
	ExtraHosts []string
}

// DaemonSpec is how every sandbox daemon is made, pooled or not.
type DaemonSpec struct {
	Image        ImageRef // without Auth: a job's login is in its Spec
	Security     DaemonSecurity
	MTU          int           // 0: the outer default bridge's MTU
	ReadyTimeout time.Duration // bound on the daemon answering over mutual TLS

	// NetworkMTU is the MTU of the daemon's own bridges: its default
	// bridge and every network a job creates in it. 0: the sandbox
	// network's MTU.
	NetworkMTU int
	// RegistryMirrors are Docker Hub mirrors (--registry-mirror), in order.
	RegistryMirrors []string
	// InsecureRegistries are "host[:port]" or CIDR (--insecure-registry).
	InsecureRegistries []string
	// RegistryCAs are PEM CA certificates by registry "host[:port]",
	// copied to /etc/docker/certs.d/<registry>/ca.crt before the daemon
	// starts.
	RegistryCAs map[string][]byte
	// Proxy is the daemon container's proxy environment.
	Proxy Proxy
	// DNS are the name servers of the daemon's containers (--dns).
	DNS []string
	// Features are dockerd features (daemon.json "features").
	Features map[string]bool

	// imageUser is the daemon image's USER, which the rootless profile
	// runs; read when the daemon is made, "" for the other profiles.
	imageUser string

	// imageDockerVersion is the daemon image's DOCKER_VERSION (official
	// docker:dind images set it), read when the daemon is made; "" when
	// the image does not say.
	imageDockerVersion string
}

// Proxy is what the daemon's pulls and pushes go through; empty: direct.
type Proxy struct {
	HTTP, HTTPS, No string
}

// PoolKey tells apart pools of different daemon settings: a job only takes
// a daemon made the way its own config says. Without [daemon] settings the
// key is what it was before that table existed, so an upgrade keeps the
// pool it finds.
func (s Settings) PoolKey() string {
	d, l := s.Daemon, s.Limits
	key := fmt.Appendf(nil, "%s|%s|%s|%d|%d|%d|%d", d.Image.Name, d.Image.Platform,
		d.Security, d.MTU, l.NanoCPUs, l.MemoryBytes, l.Pids)
	if table := s.daemonTableKey(); table != nil {
		key = append(append(key, '|'), table...)
	}
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:6])
}

// daemonTableKey is a canonical encoding of every [daemon] setting (maps in
// key order, lists in their order, which matters to dockerd and
// /etc/hosts), or nil when none is set.
func (s Settings) daemonTableKey() []byte {
	d := s.Daemon
	table := struct {
		NetworkMTU         int               `json:"network_mtu,omitempty"`
		RegistryMirrors    []string          `json:"registry_mirrors,omitempty"`
		InsecureRegistries []string          `json:"insecure_registries,omitempty"`
		RegistryCAs        map[string][]byte `json:"registry_cas,omitempty"`
		Proxy              Proxy             `json:"proxy,omitzero"`
		DNS                []string          `json:"dns,omitempty"`
		ExtraHosts         []string          `json:"extra_hosts,omitempty"`
		Features           map[string]bool   `json:"features,omitempty"`
	}{d.NetworkMTU, d.RegistryMirrors, d.InsecureRegistries, d.RegistryCAs, d.Proxy, d.DNS, s.ExtraHosts, d.Features}
	data, err := json.Marshal(table)
	if err != nil || string(data) == "{}" {
		return nil // strings, byte slices and bools always encode
	}
	return data
}

// Spec is what one job asks of its sandbox.
type Spec struct {
	Identity Identity

	BuildImage  ImageRef
	HelperImage ImageRef
	Services    []Service
	// DaemonAuth is the job's login for the daemon image's registry.
	DaemonAuth *RegistryAuth
	// DaemonAliases are names the daemon answers to on the job network
	// besides "docker" (a dind service's aliases); its certificate covers
	// them. A job with aliases gets a daemon of its own, never a pooled one.
	DaemonAliases []string
	// PlainTCP gives the job, written with TLS off (DOCKER_HOST on port
	// 2375), a plain endpoint on its daemon that only its build container
	// reaches: a network of those two alone, where the daemon answers to
	// its names and a relay in it serves dockerd's socket on port 2375. The
	// mutual-TLS endpoint stays. Never a pooled daemon.
	PlainTCP bool

	// DaemonRequest is what the job's dind service asks of its daemon
	// (flags, variables dockerd reads, a pinned image), checked by the
	// caller against its allow-list. A job with any of it gets a daemon
	// started for it, never a pooled one.
	DaemonRequest DaemonRequest

	// BuildEntrypoint replaces the build image's entrypoint when non-nil;
	// []string{""} removes it (.gitlab-ci.yml entrypoint: [""]).
	BuildEntrypoint []string
	// BuildUser runs the build container (and owns the client key) as
	// this user; empty: the image's user.
	BuildUser string

	CertLifetime time.Duration // the job's timeout plus a margin
	// RunnerVersion is what the runner reported, for the audit trail.
	RunnerVersion string

	// Log receives the lines meant for the job log (pull progress, steps).
	Log io.Writer
}

// DaemonRequest is what a job asks of its sandbox's daemon. It is added
// to the operator's settings, never in their place: flags after the
// operator's, features and no_proxy beside the operator's, a proxy only
// where the operator set none, an MTU only up to the operator's bound.
type DaemonRequest struct {
	// Image is the daemon image the job pins (its dind service's, where
	// the operator allows it), with how to get it; nil: the operator's.
	Image *ImageRef
	// Flags are dockerd flags ("--name" or "--name=value"), appended in
	// the job's order after the executor's and the operator's.
	Flags []string
	// MTU is the job's --mtu: its daemon's default bridge and every
	// network it creates; at most [daemon] network_mtu when that is set,
	// else the sandbox network's MTU. 0: none.
	MTU int
	// Features are dockerd features the job names; where the operator's
	// [daemon] features name one too, the operator's value holds.
	Features map[string]bool
	// Proxy is the daemon's proxy environment the job asks for: HTTP and
	// HTTPS where the operator set none, No appended to the operator's.
	Proxy Proxy
}

// IsZero reports whether the job asks nothing of its daemon.
func (r DaemonRequest) IsZero() bool {
	return r.Image == nil && len(r.Flags) == 0 && r.MTU == 0 && len(r.Features) == 0 && r.Proxy == (Proxy{})
}

// withDaemonRequest is p with the job's daemon request merged into the
// operator's daemon settings, and a line for the job log for every part of
// the request the operator's settings overrule. Nothing the operator set
// is removed or replaced.
func (p plan) withDaemonRequest() (plan, []string) {
	r := p.DaemonRequest
	var notes []string
	if r.Image != nil {
		p.Daemon.Image = *r.Image
	}
	if len(r.Features) > 0 {
		merged := maps.Clone(p.Daemon.Features)
		if merged == nil {
			merged = map[string]bool{}
		}
		for _, name := range slices.Sorted(maps.Keys(r.Features)) {
			if op, set := p.Daemon.Features[name]; set {
				if op != r.Features[name] {
					notes = append(notes, fmt.Sprintf("the job's --feature %s=%t is not applied: the runner's [daemon] features sets %s=%t", name, r.Features[name], name, op))
				}
				continue
			}
			merged[name] = r.Features[name]
		}
		p.Daemon.Features = merged
	}
	for _, v := range []struct {
		name, key string
		op        *string
		job       string
	}{{"HTTP_PROXY", "http_proxy", &p.Daemon.Proxy.HTTP, r.Proxy.HTTP}, {"HTTPS_PROXY", "https_proxy", &p.Daemon.Proxy.HTTPS, r.Proxy.HTTPS}} {
		switch {
		case v.job == "":
		case *v.op == "":
			*v.op = v.job
		case *v.op != v.job:
			notes = append(notes, fmt.Sprintf("the job's %s for its daemon is not applied: the runner's [daemon] %s holds", v.name, v.key))
		}
	}
	if r.Proxy.No != "" {
		if p.Daemon.Proxy.No == "" {
			p.Daemon.Proxy.No = r.Proxy.No
		} else {
			p.Daemon.Proxy.No += "," + r.Proxy.No
		}
	}
	return p, notes
}

// plan is one sandbox to build: the operator's settings and the job's
// request, read together by the container builders.
type plan struct {
	Settings
	Spec
}

// daemonImage is the daemon image with the job's login for its registry.
func (p plan) daemonImage() ImageRef {
	img := p.Daemon.Image
	img.Auth = p.DaemonAuth
	return img
}

// The daemon's certificates live in the official docker:dind
// DOCKER_TLS_CERTDIR layout, so the image's own entrypoint finds them and
// generates nothing; the build container gets the client side.
const (
	CertDir          = config.CertsDir
	ClientCertDir    = CertDir + "/client"
	DaemonTLSPort    = 2376
	DaemonPlainPort  = 2375
	DaemonHostInJob  = "tcp://docker:2376"
	BuildHostInJob   = "build" // the build container's name on the job network
	defaultBridgeMTU = 1500
)
