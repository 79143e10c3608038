package executor

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor/containerfs"
)

// SecurityRootless runs the sandbox's dockerd as a non-root user inside a
// user namespace (rootlesskit, as dockerd-rootless.sh does), in a
// container that is not privileged and never runs anything as root: the
// job's root, and a --privileged container of the job, are the daemon
// user's subordinate ids on the host, with no capability outside the
// sandbox's namespaces. The dind image must be a rootless one (the
// docker:dind-rootless layout): see rootlessScript for what it must hold.
const SecurityRootless DaemonSecurity = "rootless"

// Where the rootless daemon keeps things in its container.
const (
	// rootlessDataRoot is the docker:dind-rootless image's data root (a
	// VOLUME owned by its user): the sandbox's data root volume is mounted
	// there, and a new volume takes the directory's owner from the image.
	rootlessDataRoot = "/home/rootless/.local/share/docker"
	// rootlessRuntimeDir is XDG_RUNTIME_DIR: dockerd's unix socket and
	// rootlesskit's state. Outside the directories rootlesskit copies up
	// (/etc, /run), so the plain relay beside rootlesskit reaches it.
	rootlessRuntimeDir = "/tmp/dind-rootless"
	rootlessSocket     = rootlessRuntimeDir + "/docker.sock"
	// rootlessTun is the device slirp4netns needs for the daemon's network
	// namespace (its tap device).
	rootlessTun = "/dev/net/tun"
)

// rootlessRight is one right of the rootless daemon container and why it
// cannot go. The list is what daemonContainer applies, what the
// integration test compares with what the Engine reports, and what the
// README documents.
type rootlessRight struct {
	Kind  string // "cap-add", "cap-drop", "security-opt", "device", "bind", "user"
	Value string
	Why   string
}

var rootlessRights = []rootlessRight{
	{"cap-drop", "ALL", "nothing in the container runs as root: no capability of Docker's default set is needed but the two below"},
	{"cap-add", "SETUID", "bounding set for newuidmap's file capability (cap_setuid=ep): it maps the user namespace's ids 1..65536 to the user's subordinate uids (/etc/subuid)"},
	{"cap-add", "SETGID", "likewise for newgidmap and /etc/subgid"},
	{"security-opt", "seccomp=" + rootlessSeccompProfile, "Docker's default seccomp profile refuses unshare/clone of a user namespace, mount and setns to a process without CAP_SYS_ADMIN, which rootlesskit, dockerd and runc need inside the user namespace (first error with it: \"[rootlesskit:parent] error: failed to start the child: fork/exec /proc/self/exe: operation not permitted\"); this profile (rootless_seccomp.json) is Docker's default as a container holding every capability gets it, plus pivot_root and keyctl/add_key/request_key, which the inner runc calls; everything else Docker's default refuses stays refused, for the daemon and every container of the job (io_uring, userfaultfd, kexec_load...)"},
	{"security-opt", "apparmor=unconfined", "docker-default AppArmor profile denies mount(2), also inside a user namespace (hosts with AppArmor; this one has none)"},
	{"security-opt", "systempaths=unconfined", "Docker's masked and read-only /proc and /sys paths are mounts the user namespace cannot remove, and the kernel refuses a new proc or sysfs mount where they hide part of the existing one (\"mount proc:/proc ...: operation not permitted\" for every container the inner dockerd runs)"},
	{"device", rootlessTun + ":" + rootlessTun + ":rwm", "slirp4netns's tap device in the daemon's network namespace (\"open: No such file or directory\" / \"setting up tap tap0\" without it)"},
	{"bind", "/sys:/sys:rw", "a writable sysfs mount for the job's --privileged containers: the kernel lets the user namespace mount sysfs read-write only where a read-write sysfs is already visible, and a container's own /sys is read-only (\"mount sysfs:/sys ..., flags: 0xe: operation not permitted\"); writes stay refused to the daemon user by the files' owner (root)"},
	{"user", "the image's user (non-root)", "dockerd, rootlesskit and slirp4netns run as that user; root inside the user namespace is that uid outside"},
}

// RootlessRights are the container rights of the rootless profile, each
// as "kind value: why" (for the README and the audit's readers), the
// seccomp profile by digest.
func RootlessRights() []string {
	out := make([]string, 0, len(rootlessRights))
	for _, r := range rootlessRights {
		out = append(out, r.Kind+" "+SummarizeSecurityOpt(r.Value)+": "+r.Why)
	}
	return out
}

// rootlessSeccompJSON is the rootless profile's seccomp profile, derived
// from github.com/moby/profiles/seccomp v0.2.4 default.json: every rule
// with includes.caps kept without the condition, every rule with
// excludes.caps dropped (as Docker evaluates it for a container holding
// every capability; the kernel still checks capabilities, in the user
// namespace), and one rule added allowing pivot_root, keyctl, add_key and
// request_key (runc's, inside the user namespace; Docker's own runc calls
// them before its filter applies).
//
//go:embed rootless_seccomp.json
var rootlessSeccompJSON []byte

// rootlessSeccompProfile is rootlessSeccompJSON compacted, as the Engine
// API takes it in SecurityOpt ("seccomp=<profile>").
var rootlessSeccompProfile = func() string {
	var b bytes.Buffer
	if err := json.Compact(&b, rootlessSeccompJSON); err != nil {
		panic("rootless_seccomp.json: " + err.Error())
	}
	return b.String()
}()

// SummarizeSecurityOpt shortens an inline seccomp profile to its digest
// ("seccomp=profile sha256:<12 hex>"), for the audit trail and logs;
// other options are returned as they are.
func SummarizeSecurityOpt(opt string) string {
	v, ok := strings.CutPrefix(opt, "seccomp=")
	if !ok || !strings.HasPrefix(strings.TrimSpace(v), "{") {
		return opt
	}
	sum := sha256.Sum256([]byte(v))
	return "seccomp=profile sha256:" + hex.EncodeToString(sum[:6])
}

func rootlessValues(kind string) []string {
	var out []string
	for _, r := range rootlessRights {
		if r.Kind == kind {
			out = append(out, r.Value)
		}
	}
	return out
}

// RootlessCapAdd, RootlessCapDrop and RootlessSecurityOpt are the
// profile's HostConfig lists as the Engine reports them back (SecurityOpt
// without systempaths, which the API carries as empty path lists).
func RootlessCapAdd() []string  { return rootlessValues("cap-add") }
func RootlessCapDrop() []string { return rootlessValues("cap-drop") }
func RootlessSecurityOpt() []string {
	var out []string
	for _, o := range rootlessValues("security-opt") {
		if !strings.HasPrefix(o, "systempaths=") {
			out = append(out, o)
		}
	}
	return out
}

// rootlessHost gives host the rootless profile's rights (rootlessRights),
// nothing more: not privileged, no cgroup tree, no other device.
func rootlessHost(host *container.HostConfig) {
	host.Privileged = false
	host.CapDrop = RootlessCapDrop()
	host.CapAdd = RootlessCapAdd()
	host.SecurityOpt = RootlessSecurityOpt()
	// systempaths=unconfined is a CLI spelling: the API takes empty
	// (non-nil) masked and read-only path lists.
	host.MaskedPaths = []string{}
	host.ReadonlyPaths = []string{}
	host.Devices = []container.DeviceMapping{{PathOnHost: rootlessTun, PathInContainer: rootlessTun, CgroupPermissions: "rwm"}}
	host.Binds = append(host.Binds, rootlessValues("bind")...)
	// Its own cgroup namespace (the Engine's default on cgroup v2 only):
	// /proc/self/cgroup shows no host path.
	host.CgroupnsMode = container.CgroupnsModePrivate
}

// rootlessScript is the rootless daemon container's entrypoint (placed at
// rootlessScriptPath), run by sh as the image's (non-root) user, with
// dockerd's flags as arguments.
// It is the executor's, not the image's: the image only has to provide
// rootlesskit, slirp4netns, newuidmap/newgidmap with file capabilities
// (not setuid: see integration/images/dind-rootless/Dockerfile),
// subordinate ids for its user in /etc/subuid and /etc/subgid, dockerd,
// and rootlessDataRoot owned by its user.
//
// Outside the user namespace it waits for the executor to have opened
// /dev/net/tun to the user (rootlessOpenTun), starts the plain relay when
// asked, then runs rootlesskit: slirp4netns network (a tap of MTU 65520, as
// dockerd-rootless.sh: slirp4netns ends TCP there, the sandbox network's
// MTU applies outside it; the daemon's bridges keep --mtu; dockerd's listener on
// 2376 is published on the container's own address by rootlesskit's
// builtin port driver; the container's loopback is not reachable from
// inside), its own cgroup namespace, /etc and /run copied up. rootlesskit
// runs this script again as root of the user namespace
// (_DIND_ROOTLESS_CHILD=1), which mounts the cgroup hierarchies (v1) or
// cgroup2 again under the namespace (the /sys bind shows the host's
// whole tree; this shows the daemon container's own cgroup as the root;
// cgroup v2 is not tested here),
// and execs dockerd with the TLS flags of the other profiles.
const rootlessScript = `set -eu
if [ "${_DIND_ROOTLESS_CHILD:-}" = 1 ]; then
  unset _DIND_ROOTLESS_CHILD
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup || echo "dind-executor: cannot mount cgroup2 in the user namespace" >&2
  elif [ -d /sys/fs/cgroup ]; then
    mount -t tmpfs -o mode=0755,nosuid,nodev,noexec cgroup /sys/fs/cgroup
    sed -n 's/^[0-9]*:\([^:]*\):.*/\1/p' /proc/self/cgroup | while read -r c; do
      [ -n "$c" ] || continue
      d=${c#name=}
      mkdir -p "/sys/fs/cgroup/$d"
      mount -t cgroup -o "nosuid,nodev,noexec,$c" cgroup "/sys/fs/cgroup/$d" || echo "dind-executor: cannot mount cgroup $c in the user namespace" >&2
    done
  fi
  exec dockerd "$@"
fi
if [ "$(id -u)" = 0 ]; then
  echo "dind-executor: the rootless profile runs the daemon image's user, and this image's user is root: use a rootless dind image (docker:dind-rootless layout)" >&2
  exit 1
fi
for b in rootlesskit slirp4netns newuidmap newgidmap dockerd; do
  command -v "$b" >/dev/null 2>&1 || { echo "dind-executor: the rootless profile needs $b in the dind image" >&2; exit 1; }
done
for b in newuidmap newgidmap; do
  if [ -u "$(command -v "$b")" ]; then
    echo "dind-executor: $(command -v "$b") is setuid root: in a container without CAP_SYS_ADMIN it fails (\"write to uid_map failed: Operation not permitted\"); the rootless profile needs it with a file capability instead: chmod u-s and setcap cap_setuid=ep (newuidmap) / cap_setgid=ep (newgidmap) in the image" >&2
    exit 1
  fi
done
user=$(id -un 2>/dev/null || id -u)
if ! grep -qE "^($(id -u)|$user):" /etc/subuid || ! grep -qE "^($(id -u)|$user):" /etc/subgid; then
  echo "dind-executor: the rootless profile needs subordinate ids for $user in /etc/subuid and /etc/subgid" >&2
  exit 1
fi
if [ ! -w ` + rootlessDataRoot + ` ]; then
  echo "dind-executor: the data root ` + rootlessDataRoot + ` is not writable by $user: the image must own it (docker:dind-rootless layout)" >&2
  exit 1
fi
export XDG_RUNTIME_DIR=` + rootlessRuntimeDir + ` HOME="${HOME:-/home/rootless}"
mkdir -p "$XDG_RUNTIME_DIR" "$HOME/.config/docker"
[ ! -d /etc/docker/certs.d ] || [ -e "$HOME/.config/docker/certs.d" ] || ln -s /etc/docker/certs.d "$HOME/.config/docker/certs.d"
i=0
while [ ! -r ` + rootlessTun + ` ] || [ ! -w ` + rootlessTun + ` ]; do
  i=$((i + 1))
  if [ "$i" -gt 200 ]; then
    echo "dind-executor: ` + rootlessTun + ` is not open to $user: $(ls -l ` + rootlessTun + ` 2>&1)" >&2
    exit 1
  fi
  sleep 0.05
done
if [ -n "${PLAIN_RELAY:-}" ]; then "$PLAIN_RELAY" plain-relay --subnet "$PLAIN_RELAY_SUBNET" --port "$PLAIN_RELAY_PORT" --socket ` + rootlessSocket + ` & fi
export _DIND_ROOTLESS_CHILD=1
exec rootlesskit --net=slirp4netns --mtu=65520 --slirp4netns-sandbox=auto --slirp4netns-seccomp=auto \
  --disable-host-loopback --port-driver=builtin --publish=0.0.0.0:2376:2376/tcp \
  --cgroupns --copy-up=/etc --copy-up=/run --state-dir="$XDG_RUNTIME_DIR/rootlesskit" \
  sh "$0" "$@"`

// rootlessDaemon turns the daemon container c into the rootless profile's:
// its own entrypoint (rootlessScript) running the image's user, dockerd's
// flags (TLS as the docker:dind entrypoint gives them to the other
// profiles, then daemonArgs), the data root at the image's, and exactly
// the rights of rootlessRights.
func rootlessDaemon(c containerSpec, s plan, dataRoot string) containerSpec {
	c.host.Binds = []string{dataRoot + ":" + rootlessDataRoot}
	rootlessHost(c.host)
	c.config.User = s.Daemon.imageUser
	c.config.Entrypoint = []string{"sh", rootlessScriptPath}
	tlsArgs := []string{
		"--host=unix://" + rootlessSocket,
		"--host=tcp://0.0.0.0:2376",
		"--tlsverify",
		"--tlscacert", CertDir + "/server/ca.pem",
		"--tlscert", CertDir + "/server/cert.pem",
		"--tlskey", CertDir + "/server/key.pem",
		"--data-root=" + rootlessDataRoot,
	}
	c.config.Cmd = append(tlsArgs, c.config.Cmd...)
	return c
}

// rootlessScriptPath is where rootlessScript is placed before the daemon
// container starts (with the certificates, owned by the image's user).
const rootlessScriptPath = "/dind-executor/rootless.sh"

func rootlessFiles() []certFile {
	return []certFile{{rootlessScriptPath, []byte(rootlessScript + "\n"), 0o755}}
}

// rootlessImageUser is the daemon image's user, which the rootless profile
// runs: it must be set and not root.
func (e *docker) rootlessImageUser(ctx context.Context, image, name string) (string, error) {
	res, err := e.api.ImageInspect(ctx, image)
	if err != nil {
		return "", fmt.Errorf("inspect image %s: %w", image, err)
	}
	user := ""
	if res.Config != nil {
		user = res.Config.User
	}
	switch u, _, _ := strings.Cut(user, ":"); u {
	case "", "0", "root":
		return "", fmt.Errorf("daemon image %s runs as root (USER %q), and sandbox.daemon_security = \"rootless\" runs the image's own user: use a rootless dind image (docker:dind-rootless layout: a non-root USER with subordinate ids, rootlesskit, slirp4netns, newuidmap/newgidmap)", name, user)
	}
	return user, nil
}

// rootlessCopyFiles places files in the daemon container owned by its
// user (name or uid, ":group" optional), looked up in the container's
// /etc/passwd: the Engine's own lookup (CopyUIDGID) needs a running
// container on older Engines ("getent unable to find entry").
func (e *docker) rootlessCopyFiles(ctx context.Context, containerID, user string, files []certFile) error {
	name, group, _ := strings.Cut(user, ":")
	uid, uidErr := strconv.Atoi(name)
	gid := -1
	if group != "" {
		if n, err := strconv.Atoi(group); err == nil {
			gid = n
		}
	}
	if uidErr != nil || gid < 0 {
		read, err := containerfs.ReadFiles(ctx, e.api, containerID, "/etc/passwd")
		if err != nil {
			return fmt.Errorf("look up the daemon image's user %q: %w", user, err)
		}
		u, g, ok := passwdEntry(read["passwd"], name)
		if !ok {
			return fmt.Errorf("the daemon image's user %q is not in its /etc/passwd", name)
		}
		uid = u
		if gid < 0 {
			gid = g
		}
	}
	archive, err := certArchiveOwned(files, uid, gid)
	if err != nil {
		return err
	}
	if _, err := e.api.CopyToContainer(ctx, containerID, client.CopyToContainerOptions{DestinationPath: "/", Content: archive}); err != nil {
		return fmt.Errorf("copy certificates into container %s: %w", containerID, err)
	}
	return nil
}

// passwdEntry is the uid and primary gid of name (or of the uid name) in
// an /etc/passwd.
func passwdEntry(passwd []byte, name string) (uid, gid int, ok bool) {
	for _, line := range strings.Split(string(passwd), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 4 || (f[0] != name && f[2] != name) {
			continue
		}
		u, err1 := strconv.Atoi(f[2])
		g, err2 := strconv.Atoi(f[3])
		if err1 == nil && err2 == nil {
			return u, g, true
		}
	}
	return 0, 0, false
}

// rootlessExitReason is why the rootless daemon container ended, when it
// did (within a second): its checks exit with a message at once, which
// makes the exec of rootlessOpenTun fail; else err.
func (e *docker) rootlessExitReason(ctx context.Context, id SandboxID, err error) error {
	for range 10 {
		if exited := e.daemonStillRunning(ctx, id); exited != nil {
			return exited
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// rootlessOpenTun opens the daemon container's /dev/net/tun to its user.
// Docker creates a device node with the host node's owner and mode, and
// where the host's /dev/net/tun is root's alone (0600, as without udev's
// rule for it) the daemon's user cannot open its tap. The container's
// node is its own (in its /dev), so making it 0666 touches nothing
// outside. This runs before the daemon's user namespace exists and before
// the job has anything in the container; rootlessScript waits for it.
func (e *docker) rootlessOpenTun(ctx context.Context, containerID string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	created, err := e.api.ExecCreate(ctx, containerID, client.ExecCreateOptions{
		User: "0", Cmd: []string{"chmod", "0666", rootlessTun},
	})
	if err != nil {
		return fmt.Errorf("open %s to the rootless daemon's user: %w", rootlessTun, err)
	}
	if _, err := e.api.ExecStart(ctx, created.ID, client.ExecStartOptions{Detach: true}); err != nil {
		return fmt.Errorf("open %s to the rootless daemon's user: %w", rootlessTun, err)
	}
	code, err := e.execExitCode(ctx, created.ID)
	if err != nil {
		return fmt.Errorf("open %s to the rootless daemon's user: %w", rootlessTun, err)
	}
	if code != 0 {
		return fmt.Errorf("open %s to the rootless daemon's user: chmod exited with %d", rootlessTun, code)
	}
	return nil
}
