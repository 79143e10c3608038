package integration

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/executor/containerfs"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// nestedEngineLabel marks what a nested Engine is made of on the shared
// Engine (its container and data root volume), with a value per Engine,
// so a leftover is found and blamed on it.
const nestedEngineLabel = "io.dind-executor.test.nested-engine"

// Paths in the nested Engine's container: the rootless image's data root
// (see executor/rootless.go), the bind of the host directory that holds
// dockerd's socket, and the entrypoint the harness copies in.
const (
	nestedDataRoot  = "/home/rootless/.local/share/docker"
	nestedSocketDir = "/tmp/nested-run"
	nestedScript    = "/nested-engine.sh"
	nestedTun       = "/dev/net/tun"
)

// nestedEngineScript runs a rootless dockerd in the container, as the
// executor's rootless profile does (executor/rootless.go, rootlessScript),
// without TLS: its socket, in the directory bound from the host, is all
// the test and the executor use. The child branch runs as root of
// rootlesskit's user namespace and mounts the cgroup hierarchies again
// under its cgroup namespace, so the nested Engine's containers see the
// outer container's cgroup as their root.
const nestedEngineScript = `set -eu
if [ "${_NESTED_ENGINE_CHILD:-}" = 1 ]; then
  unset _NESTED_ENGINE_CHILD
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup
  else
    mount -t tmpfs -o mode=0755,nosuid,nodev,noexec cgroup /sys/fs/cgroup
    sed -n 's/^[0-9]*:\([^:]*\):.*/\1/p' /proc/self/cgroup | while read -r c; do
      [ -n "$c" ] || continue
      d=${c#name=}
      mkdir -p "/sys/fs/cgroup/$d"
      mount -t cgroup -o "nosuid,nodev,noexec,$c" cgroup "/sys/fs/cgroup/$d"
    done
  fi
  exec dockerd "$@"
fi
export XDG_RUNTIME_DIR=/tmp/nested-xdg HOME=/home/rootless
mkdir -p "$XDG_RUNTIME_DIR"
i=0
while [ ! -r ` + nestedTun + ` ] || [ ! -w ` + nestedTun + ` ]; do
  i=$((i + 1))
  if [ "$i" -gt 200 ]; then echo "nested engine: ` + nestedTun + ` is not open to $(id -un): $(ls -l ` + nestedTun + `)" >&2; exit 1; fi
  sleep 0.05
done
export _NESTED_ENGINE_CHILD=1
exec rootlesskit --net=slirp4netns --mtu=65520 --slirp4netns-sandbox=auto --slirp4netns-seccomp=auto \
  --disable-host-loopback --port-driver=builtin --cgroupns --copy-up=/etc --copy-up=/run \
  --state-dir="$XDG_RUNTIME_DIR/rootlesskit" sh "$0" "$@"
`

// nestedEngine is a rootless Docker Engine in an unprivileged container of
// the shared Engine, with the rights of the executor's rootless profile.
// In its user namespace every process has a full capability bounding set,
// so it can start privileged containers, which the shared Engine cannot on
// this machine kind (its PID 1 lacks CAP_SYS_RESOURCE).
type nestedEngine struct {
	host  string // unix:// endpoint, on the host
	value string // nestedEngineLabel's value
	dir   string // host directory: the socket dir (run) and the shares
	outer string // the container on the shared Engine
	// cgroups are the outer container's cgroup directories, given to the
	// image's user; Docker removes them with the container.
	cgroups []string
}

// startNestedEngine starts a nested Engine and removes all of it, its
// containers first, when the test ends. The nested Engine's binds name
// paths in its own container, so each of shares (host directories its
// containers bind: the seed repository, by sandbox.volumes) is copied,
// owned by its root, and the copy bound read-only at the same path: a
// file of host root is nobody's in the user namespace, and git refuses
// such a repository ("detected dubious ownership").
func startNestedEngine(t *testing.T, shares ...string) *nestedEngine {
	t.Helper()
	shared := dockerAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := shared.ImageInspect(ctx, seedjob.RootlessDaemonImage); err != nil {
		t.Fatalf("image %s is missing (%v): run integration/images/build.sh", seedjob.RootlessDaemonImage, err)
	}
	n := &nestedEngine{value: strconv.FormatInt(newJobID(), 36)}
	labels := map[string]string{nestedEngineLabel: n.value}
	volume := "dind-executor-test-nested-" + n.value
	// Registered before anything exists: destroy removes what was made.
	t.Cleanup(func() { n.destroy(t, shared, volume) })

	// A socket path must fit in 108 bytes, hence /tmp.
	dir, err := os.MkdirTemp("/tmp", "dexnest")
	if err != nil {
		t.Fatalf("make the nested Engine's host dir: %v", err)
	}
	n.dir = dir
	socketDir := filepath.Join(dir, "run")
	n.host = "unix://" + filepath.Join(socketDir, "docker.sock")
	if err := os.Mkdir(socketDir, 0o700); err != nil {
		t.Fatalf("make the nested Engine's socket dir: %v", err)
	}
	binds := []string{volume + ":" + nestedDataRoot, socketDir + ":" + nestedSocketDir}
	owned := []string{socketDir}
	for i, src := range shares {
		copied := filepath.Join(dir, "share", strconv.Itoa(i))
		if err := os.CopyFS(copied, os.DirFS(src)); err != nil {
			t.Fatalf("copy %s for the nested Engine: %v", src, err)
		}
		binds = append(binds, copied+":"+src+":ro")
		owned = append(owned, copied)
	}
	if _, err := shared.VolumeCreate(ctx, client.VolumeCreateOptions{Name: volume, Labels: labels}); err != nil {
		t.Fatalf("create the nested Engine's data root volume: %v", err)
	}
	created, err := shared.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: "dind-executor-test-nested-" + n.value,
		Config: &container.Config{
			Image:      seedjob.RootlessDaemonImage,
			Entrypoint: []string{"sh", nestedScript},
			Cmd:        []string{"--host=unix://" + nestedSocketDir + "/docker.sock", "--data-root=" + nestedDataRoot},
			Labels:     labels,
		},
		HostConfig: nestedEngineHost(binds),
	})
	if err != nil {
		t.Fatalf("create the nested Engine's container: %v", err)
	}
	n.outer = created.ID

	uid, gid, err := imageUser(ctx, shared, n.outer)
	if err != nil {
		t.Fatal(err)
	}
	// Its dockerd (root of the user namespace: the image's user outside)
	// creates the socket, and its containers read the shares.
	for _, root := range owned {
		if err := chownTree(root, uid, gid); err != nil {
			t.Fatalf("give %s to the nested Engine's user: %v", root, err)
		}
	}
	if err := copyFile(ctx, shared, n.outer, nestedScript, nestedEngineScript); err != nil {
		t.Fatal(err)
	}
	if _, err := shared.ContainerStart(ctx, n.outer, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start the nested Engine's container: %v", err)
	}
	// Docker copies the host node's mode (0600 here) and slirp4netns runs
	// as the user: as the executor does for its rootless profile.
	if code, out, err := execInContainer(shared, n.outer, "0", "chmod", "0666", nestedTun); err != nil || code != 0 {
		t.Fatalf("open %s to the nested Engine's user: exit %d, %v: %s", nestedTun, code, err, out)
	}
	n.waitReady(t, shared)

	inspected, err := shared.ContainerInspect(ctx, n.outer, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspect the nested Engine's container: %v", err)
	}
	if n.cgroups, err = delegateCgroups(inspected.Container.State.Pid, uid, gid); err != nil {
		t.Fatalf("delegate the nested Engine's cgroups: %v", err)
	}
	return n
}

// nestedEngineHost gives the nested Engine's container exactly the rights
// of the executor's rootless profile (executor/rootless.go, rootlessHost;
// README table), with its data root volume, the socket dir and the shares
// (binds).
func nestedEngineHost(binds []string) *container.HostConfig {
	h := &container.HostConfig{
		CapDrop:     executor.RootlessCapDrop(),
		CapAdd:      executor.RootlessCapAdd(),
		SecurityOpt: executor.RootlessSecurityOpt(), // rootless_seccomp.json, apparmor=unconfined
		// systempaths=unconfined, as the API takes it.
		MaskedPaths:   []string{},
		ReadonlyPaths: []string{},
		Binds:         append([]string{"/sys:/sys:rw"}, binds...),
		CgroupnsMode:  container.CgroupnsModePrivate,
		// The image's other VOLUME, unused: no anonymous volume to leak.
		Tmpfs: map[string]string{"/var/lib/docker": ""},
	}
	h.Devices = []container.DeviceMapping{{PathOnHost: nestedTun, PathInContainer: nestedTun, CgroupPermissions: "rwm"}}
	return h
}

// imageUser is the uid and gid of a created container's image USER,
// looked up in its /etc/passwd.
func imageUser(ctx context.Context, api *client.Client, id string) (uid, gid int, err error) {
	inspected, err := api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return 0, 0, fmt.Errorf("inspect %s: %w", id, err)
	}
	user, _, _ := strings.Cut(inspected.Container.Config.User, ":")
	if user == "" || user == "root" || user == "0" {
		return 0, 0, fmt.Errorf("image %s runs as root (USER %q), a nested rootless Engine needs a user", inspected.Container.Config.Image, user)
	}
	files, err := containerfs.ReadFiles(ctx, api, id, "/etc/passwd")
	if err != nil {
		return 0, 0, fmt.Errorf("look up the image's user %q: %w", user, err)
	}
	for _, line := range strings.Split(string(files["passwd"]), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 4 && (f[0] == user || f[2] == user) {
			uid, err1 := strconv.Atoi(f[2])
			gid, err2 := strconv.Atoi(f[3])
			if err := errors.Join(err1, err2); err != nil {
				return 0, 0, fmt.Errorf("the image's /etc/passwd entry %q: %w", line, err)
			}
			return uid, gid, nil
		}
	}
	return 0, 0, fmt.Errorf("the image's user %q is not in its /etc/passwd", user)
}

// chownTree gives root and everything below it to uid:gid.
func chownTree(root string, uid, gid int) error {
	return filepath.WalkDir(root, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

// copyFile places a 0755 file owned by root in a created container.
func copyFile(ctx context.Context, api *client.Client, id, path, content string) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(path, "/"), Mode: 0o755, Size: int64(len(content))}); err != nil {
		return err
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if _, err := api.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/", Content: &buf}); err != nil {
		return fmt.Errorf("copy %s into %s: %w", path, id, err)
	}
	return nil
}

// waitReady waits, bounded, for the nested dockerd to answer a ping, and
// fails with the container's log when it does not or its container ends.
func (n *nestedEngine) waitReady(t *testing.T, shared *client.Client) {
	t.Helper()
	api := n.api(t)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		cancel()
		if err == nil {
			return
		}
		inspected, ierr := shared.ContainerInspect(context.Background(), n.outer, client.ContainerInspectOptions{})
		if ierr == nil && !inspected.Container.State.Running {
			t.Fatalf("the nested Engine's container exited (%d):\n%s", inspected.Container.State.ExitCode, containerLog(shared, n.outer))
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nested Engine did not answer within 60s: %v\n%s", err, containerLog(shared, n.outer))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// containerLog is a container's output, for failure messages.
func containerLog(api *client.Client, id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	logs, err := api.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "40"})
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer logs.Close()
	var out strings.Builder
	_, _ = stdcopyAll(&out, logs)
	return out.String()
}

// api is a client of the nested Engine, closed when the test ends.
func (n *nestedEngine) api(t *testing.T) *client.Client {
	t.Helper()
	return engineClient(t, n.host)
}

// loadImages copies images from the shared Engine into the nested one.
func (n *nestedEngine) loadImages(t *testing.T, images ...string) {
	t.Helper()
	if err := copyImages(context.Background(), dockerAPI(t), n.api(t), images...); err != nil {
		t.Fatalf("load images into the nested Engine: %v", err)
	}
}

// copyImages saves images from one Engine and loads them into another,
// through the Engine API, as no registry is reachable.
func copyImages(ctx context.Context, from, to *client.Client, images ...string) error {
	saved, err := from.ImageSave(ctx, images)
	if err != nil {
		return fmt.Errorf("save %v: %w", images, err)
	}
	defer saved.Close()
	loaded, err := to.ImageLoad(ctx, saved, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("load %v: %w", images, err)
	}
	out, _ := io.ReadAll(loaded)
	loaded.Close()
	for _, image := range images {
		if _, err := to.ImageInspect(ctx, image); err != nil {
			return fmt.Errorf("image %s not loaded: %w\n%s", image, err, out)
		}
	}
	return nil
}

// delegateCgroups gives uid:gid the cgroup directories of process pid (the
// nested Engine's container), as host root. The privileged containers of
// the nested Engine are root of its user namespace, which is uid outside:
// their dockerd creates its cgroups below the container's own, and
// without this runc fails with "unable to apply cgroup configuration:
// mkdir /sys/fs/cgroup/cpuset/docker: permission denied". Only the
// directories change owner (the kernel lets the owner create children);
// their files stay root's. It returns the directories.
func delegateCgroups(pid, uid, gid int) ([]string, error) {
	membership, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, fmt.Errorf("read the cgroups of pid %d: %w", pid, err)
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	var dirs, files []string
	unified := ""
	for _, line := range strings.Split(strings.TrimSpace(string(membership)), "\n") {
		id, rest, _ := strings.Cut(line, ":")
		controllers, path, ok := strings.Cut(rest, ":")
		if !ok {
			return nil, fmt.Errorf("/proc/%d/cgroup line %q", pid, line)
		}
		if id == "0" && controllers == "" {
			// On a hybrid host the v1 hierarchies are what dockerd uses;
			// the unified one only counts on a v2 host.
			unified = path
			continue
		}
		dir, err := cgroupDir(mounts, strings.Split(controllers, ","), path)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, dir)
	}
	if len(dirs) == 0 {
		dir, err := cgroupDir(mounts, nil, unified)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, dir)
		for _, f := range []string{"cgroup.procs", "cgroup.threads", "cgroup.subtree_control"} {
			files = append(files, filepath.Join(dir, f))
		}
	}
	for _, p := range append(slices.Clone(dirs), files...) {
		if err := os.Chown(p, uid, gid); err != nil {
			return dirs, fmt.Errorf("give %s to %d:%d: %w", p, uid, gid, err)
		}
	}
	return dirs, nil
}

// cgroupMount is one cgroup hierarchy mounted on the host.
type cgroupMount struct {
	root, point string
	options     []string // super options: the v1 controllers, name=...
	v2          bool
}

// cgroupMounts lists the host's cgroup mounts from /proc/self/mountinfo.
func cgroupMounts() ([]cgroupMount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read the host's mounts: %w", err)
	}
	defer f.Close()
	var out []cgroupMount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "id parent major:minor root point options ... - fstype source super"
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 3 || (tail[0] != "cgroup" && tail[0] != "cgroup2") {
			continue
		}
		out = append(out, cgroupMount{root: fields[3], point: fields[4], options: strings.Split(tail[2], ","), v2: tail[0] == "cgroup2"})
	}
	return out, sc.Err()
}

// cgroupDir is where cgroup path of the hierarchy holding controllers (the
// v2 one when nil) is on the host.
func cgroupDir(mounts []cgroupMount, controllers []string, path string) (string, error) {
	for _, m := range mounts {
		if m.v2 != (controllers == nil) {
			continue
		}
		if !m.v2 && slices.ContainsFunc(controllers, func(c string) bool { return !slices.Contains(m.options, c) }) {
			continue
		}
		rel, ok := strings.CutPrefix(path, m.root)
		if !ok {
			return "", fmt.Errorf("cgroup %s is outside the host's mount of its hierarchy (root %s at %s)", path, m.root, m.point)
		}
		return filepath.Join(m.point, rel), nil
	}
	return "", fmt.Errorf("no cgroup mount on the host for controllers %v", controllers)
}

// destroy removes the nested Engine's containers, then its own container
// (and with it its cgroups), its volume and the socket dir, and checks
// that nothing of it is left on the shared Engine or in the cgroup tree.
func (n *nestedEngine) destroy(t *testing.T, shared *client.Client, volume string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if n.outer != "" {
		if api, err := client.New(client.WithHost(n.host)); err == nil {
			if list, err := api.ContainerList(ctx, client.ContainerListOptions{All: true}); err == nil {
				for _, c := range list.Items {
					if _, err := api.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
						t.Errorf("remove container %v of the nested Engine: %v", c.Names, err)
					}
				}
			}
			api.Close()
		}
		if _, err := shared.ContainerRemove(ctx, n.outer, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			t.Errorf("remove the nested Engine's container: %v", err)
		}
	}
	if _, err := shared.VolumeRemove(ctx, volume, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		t.Errorf("remove the nested Engine's volume %s: %v", volume, err)
	}
	if n.dir != "" {
		if err := os.RemoveAll(n.dir); err != nil {
			t.Errorf("remove the nested Engine's socket dir: %v", err)
		}
	}
	for _, dir := range n.cgroups {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s of the nested Engine's container is left (%v)", dir, err)
		}
	}
	assertNothingLeft(t, nestedEngineLabel, n.value)
}
