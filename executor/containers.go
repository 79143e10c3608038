package executor

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"gitlab.com/dind-executor/dind-executor/executor/tlsca"
)

// containerSpec is one create request; the functions below build them from
// a Spec without touching the Engine, so they can be table-tested.
type containerSpec struct {
	name       string
	role       Role
	platform   string
	config     *container.Config
	host       *container.HostConfig
	networking *network.NetworkingConfig
	joins      []networkJoin // more networks, connected before start
}

// keepAlive is the main process of the build and helper containers: stages
// arrive as execs, so PID 1 only has to wait, and stop promptly on TERM.
const keepAlive = `trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done`

// helperKeepAlive also puts the runner helper on PATH under the name the
// runner's scripts call (gitlab-runner) when the image only has
// gitlab-runner-helper, as the official helper image does.
const helperKeepAlive = `if ! command -v gitlab-runner >/dev/null 2>&1 && command -v gitlab-runner-helper >/dev/null 2>&1; then ` +
	`ln -s "$(command -v gitlab-runner-helper)" /usr/local/bin/gitlab-runner 2>/dev/null || true; fi; ` + keepAlive

func resources(l Limits) container.Resources {
	r := container.Resources{NanoCPUs: l.NanoCPUs, Memory: l.MemoryBytes}
	if l.Pids > 0 {
		pids := l.Pids
		r.PidsLimit = &pids
	}
	return r
}

// logConfig bounds what a container's output takes on the Engine host: the
// daemon's (a job can make its dockerd verbose) and a service's (its image
// is the job's) would grow until cleanup under the Engine's default
// json-file driver. Docker's local driver keeps two files of half the
// bound each; the executor reads a daemon's last lines back through it.
func logConfig(l Limits) container.LogConfig {
	if l.LogBytes <= 0 {
		return container.LogConfig{}
	}
	return container.LogConfig{Type: "local", Config: map[string]string{
		"max-size": strconv.FormatInt(l.LogBytes/2, 10), "max-file": "2",
	}}
}

func attach(networkName string, aliases ...string) *network.NetworkingConfig {
	return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		networkName: {Aliases: aliases},
	}}
}

// daemonWrapper runs in front of the dind image's own entrypoint (which
// still does all the rest: certificates, flags, cgroup setup) and adds two
// things to the dockerd command line:
//
//   - containerd is started first and dockerd pointed at it: dockerd then
//     skips the wait for the containerd it would launch itself, about a
//     second of its ~1.5 s start here. Only as root: rootless images start
//     their own daemons inside rootlesskit. Two of its plugins are off:
//     CRI (Kubernetes' interface, which dockerd does not use) and
//     the restart monitor, which would start any containerd container
//     labelled to restart that a job planted in a kept layer cache (its
//     metadata lives there) in the project's next daemon.
//   - for a job written with TLS off, the relay of its plain endpoint
//     (see plaintcp.go) is started beside the daemon.
//   - with the capabilities profile (nestCgroups), /sys/fs/cgroup is the
//     host's, and on cgroup v1 the inner dockerd would put the job's
//     containers in host cgroups beside the daemon container, outside the
//     sandbox's limits: it is told to nest them under the daemon
//     container's own cgroup. On cgroup v2 (no memory line) the
//     entrypoint's own nesting applies.
const daemonWrapper = `if [ "$NEST_CGROUPS" = 1 ]; then
  parent=$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup | head -n 1)
  if [ -n "$parent" ] && [ "$parent" != "/" ]; then set -- "$@" --cgroup-parent="$parent/inner"; fi
fi
if [ -n "$PLAIN_RELAY" ]; then "$PLAIN_RELAY" plain-relay --subnet "$PLAIN_RELAY_SUBNET" --port "$PLAIN_RELAY_PORT" & fi
if [ "$(id -u)" = 0 ] && command -v containerd >/dev/null 2>&1; then
  sock=/var/run/docker/containerd/containerd.sock
  mkdir -p /var/lib/docker/containerd/daemon /var/run/docker/containerd
  printf '%s\n' 'version = 2' 'disabled_plugins = ["io.containerd.internal.v1.restart", "io.containerd.grpc.v1.cri"]' >/var/run/docker/containerd/containerd.toml
  containerd --config /var/run/docker/containerd/containerd.toml --log-level warn --root /var/lib/docker/containerd/daemon --state /var/run/docker/containerd/daemon --address "$sock" &
  set -- "$@" --containerd="$sock"
fi
exec "$@"`

// daemonContainer runs the dind image's own entrypoint (imageEntrypoint,
// read from the image) behind daemonWrapper; certificates are copied in
// before start, so the entrypoint only has to use them.
func daemonContainer(s plan, networkName string, mtu int, dataRoot string, imageEntrypoint []string) containerSpec {
	id := s.Identity
	host := &container.HostConfig{
		NetworkMode: container.NetworkMode(networkName),
		Binds:       []string{dataRoot + ":/var/lib/docker"},
		Resources:   resources(s.Limits),
		LogConfig:   logConfig(s.Limits),
		ExtraHosts:  s.ExtraHosts,
	}
	switch s.Daemon.Security {
	case SecurityCapabilities:
		host.CapAdd = []string{"ALL"}
		host.CapDrop = []string{"SYS_RESOURCE"}
		host.SecurityOpt = []string{"seccomp=unconfined", "apparmor=unconfined"}
		// systempaths=unconfined is a CLI spelling: the API takes empty
		// (non-nil) masked and read-only path lists.
		host.MaskedPaths = []string{}
		host.ReadonlyPaths = []string{}
		host.Resources.DeviceCgroupRules = []string{"a *:* rwm"}
		host.Binds = append(host.Binds, "/sys/fs/cgroup:/sys/fs/cgroup:rw")
	default:
		host.Privileged = true
	}
	var entrypoint []string
	if len(imageEntrypoint) > 0 {
		entrypoint = append([]string{"sh", "-c", daemonWrapper, "sh"}, imageEntrypoint...)
	}
	daemonImage, daemonPlatform := s.Daemon.Image.createRef()
	daemonLabels := id.Labels(RoleDaemon)
	daemonLabels[LabelImage] = s.Daemon.Image.Name
	nest := "0"
	if s.Daemon.Security == SecurityCapabilities {
		nest = "1"
	}
	c := containerSpec{
		name:     id.Name(RoleDaemon),
		role:     RoleDaemon,
		platform: daemonPlatform,
		config: &container.Config{
			Image:      daemonImage,
			Entrypoint: entrypoint,
			Hostname:   "docker",
			Env:        append([]string{"DOCKER_TLS_CERTDIR=" + CertDir, "NEST_CGROUPS=" + nest}, proxyEnv(s.Daemon.Proxy)...),
			Cmd:        daemonArgs(s.Daemon, s.DaemonRequest, mtu),
			Labels:     daemonLabels,
		},
		host:       host,
		networking: attach(networkName, append([]string{tlsca.DaemonServerName}, s.DaemonAliases...)...),
	}
	if s.Daemon.Security == SecurityRootless {
		return rootlessDaemon(c, s, dataRoot)
	}
	return c
}

// daemonArgs are the dockerd flags the dind image's entrypoint appends to
// its own: the operator's [daemon] settings, then the job's own flags
// (r, checked by stages; one the operator's already give is not repeated).
// sandboxMTU is the job network's; the daemon's own bridges (its default
// one, and the default for every network a job creates, compose's
// included) take the job's --mtu, else NetworkMTU, else that.
// --default-network-opt needs dockerd 24 or later: it is left out for an
// image that says it is older.
func daemonArgs(d DaemonSpec, r DaemonRequest, sandboxMTU int) []string {
	mtu := strconv.Itoa(innerMTU(d, r, sandboxMTU))
	args := []string{"--mtu=" + mtu}
	if !d.olderThan(networkOptVersion) {
		args = append(args, "--default-network-opt=bridge="+mtuOption+"="+mtu)
	}
	for _, m := range d.RegistryMirrors {
		args = append(args, "--registry-mirror="+m)
	}
	for _, r := range d.InsecureRegistries {
		args = append(args, "--insecure-registry="+r)
	}
	for _, ip := range d.DNS {
		args = append(args, "--dns="+ip)
	}
	if len(d.Features) > 0 {
		args = append(args, "--config-file="+daemonConfigFile)
	}
	for _, f := range r.Flags {
		if !slices.Contains(args, f) {
			args = append(args, f)
		}
	}
	return args
}

// networkOptVersion is the first dockerd with --default-network-opt.
const networkOptVersion = 24

// olderThan reports whether the daemon image says its Docker is older
// than major; an image that does not say is taken to be recent.
func (d DaemonSpec) olderThan(major int) bool {
	v, _, _ := strings.Cut(d.imageDockerVersion, ".")
	n, err := strconv.Atoi(v)
	return err == nil && n < major
}

// proxyEnv is the daemon container's proxy environment, in both spellings
// (dockerd reads either; tools in the image may read one).
func proxyEnv(p Proxy) []string {
	var env []string
	for _, v := range []struct{ name, value string }{{"HTTP_PROXY", p.HTTP}, {"HTTPS_PROXY", p.HTTPS}, {"NO_PROXY", p.No}} {
		if v.value != "" {
			env = append(env, v.name+"="+v.value, strings.ToLower(v.name)+"="+v.value)
		}
	}
	return env
}

// jobMounts are shared by the build and helper containers, at the same
// absolute paths, because the runner's scripts use host-computed paths.
func jobMounts(s plan) []string {
	binds := []string{
		s.Identity.Name(RoleBuilds) + ":" + s.BuildsDir,
		s.Identity.CacheVolume() + ":" + s.CacheDir,
	}
	return append(binds, s.ExtraBinds...)
}

// buildContainer runs the job's image: never privileged, no Engine socket,
// and pointed at the sandbox daemon with the client certificate. The
// image's entrypoint (or the job's) wraps the keep-alive command, as it
// wraps the shell under the docker executor.
func buildContainer(s plan, networkName string) containerSpec {
	c := jobContainer(s, networkName, RoleBuild, s.BuildImage, []string{
		"DOCKER_HOST=" + DaemonHostInJob,
		"DOCKER_TLS_VERIFY=1",
		"DOCKER_CERT_PATH=" + ClientCertDir,
		"DOCKER_TLS_CERTDIR=" + CertDir,
	})
	c.config.Entrypoint = s.BuildEntrypoint
	c.config.Cmd = []string{"sh", "-c", keepAlive}
	c.config.User = s.BuildUser
	// Services can call the job back, as under the docker executor's
	// network per build.
	c.networking = attach(networkName, BuildHostInJob)
	return c
}

// helperContainer runs git, cache and artifact stages with the runner helper.
func helperContainer(s plan, networkName string) containerSpec {
	c := jobContainer(s, networkName, RoleHelper, s.HelperImage, nil)
	c.config.Entrypoint = []string{"sh", "-c", helperKeepAlive}
	return c
}

// jobContainer is what the build and helper containers share: the job
// network, the builds and cache volumes, the limits, and no extra rights.
func jobContainer(s plan, networkName string, role Role, image ImageRef, env []string) containerSpec {
	id := s.Identity
	ref, platform := image.createRef()
	labels := id.Labels(role)
	labels[LabelImage] = image.Name
	return containerSpec{
		name:     id.Name(role),
		role:     role,
		platform: platform,
		config: &container.Config{
			Image:  ref,
			Env:    env,
			Labels: labels,
		},
		host: &container.HostConfig{
			NetworkMode: container.NetworkMode(networkName),
			Binds:       jobMounts(s),
			Resources:   resources(s.Limits),
			LogConfig:   logConfig(s.Limits),
			ExtraHosts:  s.ExtraHosts,
		},
		networking: attach(networkName),
	}
}

// serviceName is the i-th service container's name.
func serviceName(id SandboxID, i int) string {
	return id.Name(RoleService) + "-" + strconv.Itoa(i)
}

// serviceContainer runs one job service on the job network under its
// aliases, unprivileged, with the sandbox's limits and no job volumes.
func serviceContainer(s plan, networkName string, i int) containerSpec {
	id := s.Identity
	svc := s.Services[i]
	labels := id.Labels(RoleService)
	labels[LabelService] = svc.Image.Name
	labels[LabelImage] = svc.Image.Name
	ref, platform := svc.Image.createRef()
	return containerSpec{
		name:     serviceName(id.SandboxID, i),
		role:     RoleService,
		platform: platform,
		config: &container.Config{
			Image:      ref,
			Entrypoint: svc.Entrypoint,
			Cmd:        svc.Command,
			Env:        svc.Env,
			Labels:     labels,
		},
		host: &container.HostConfig{
			NetworkMode: container.NetworkMode(networkName),
			Resources:   resources(s.Limits),
			LogConfig:   logConfig(s.Limits),
			ExtraHosts:  s.ExtraHosts,
		},
		networking: attach(networkName, svc.Aliases...),
	}
}

func (c containerSpec) String() string { return fmt.Sprintf("%s container %s", c.role, c.name) }
