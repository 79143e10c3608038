package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// privateEngine is a second dockerd that belongs to one test, for what must
// not be done to the Engine every other test shares (restarting it). It has
// its own data root, exec root (and so its own managed containerd), socket,
// pid file, config file and cgroup parent, and it runs in a network
// namespace of its own: its bridges, routes and iptables rules never meet
// the host's. (On the host's network, a restarting dockerd with its own
// address pools deletes the host's docker0, which the shared Engine uses.)
//
// The sandboxes' daemons are reachable only inside that namespace, so the
// executor runs there too: Binary is a wrapper that enters it.
type privateEngine struct {
	dir    string
	host   string // unix:// endpoint, reachable from any namespace
	netns  string // name under /run/netns
	binary string // dind-executor, run inside netns
	args   []string
	cmd    *exec.Cmd
	done   chan error
	log    *os.File
}

// startPrivateEngine starts a private dockerd and removes every trace of
// it when the test ends. A socket path must fit in 108 bytes, hence /tmp.
func startPrivateEngine(t *testing.T) *privateEngine {
	t.Helper()
	return startPrivateEngineWith(t, nil)
}

// startPrivateEngineWith is startPrivateEngine with setup run once its
// network namespace exists and before dockerd starts (to add listeners).
func startPrivateEngineWith(t *testing.T, setup func(p *privateEngine)) *privateEngine {
	t.Helper()
	for _, tool := range []string{"dockerd", "ip", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make setup installs docker.io; ip and nsenter come with Debian): %v", tool, err)
		}
	}
	dir, err := os.MkdirTemp("/tmp", "dexd")
	if err != nil {
		t.Fatal(err)
	}
	p := &privateEngine{dir: dir, host: "unix://" + filepath.Join(dir, "docker.sock"), netns: filepath.Base(dir)}
	configFile := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(configFile, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.args = []string{
		"--net=/run/netns/" + p.netns, "--", "dockerd", "--config-file", configFile,
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"), "-H", p.host, "--cgroup-parent", "/" + p.netns,
	}
	p.binary = filepath.Join(dir, "dind-executor-in-netns")
	wrapper := fmt.Sprintf("#!/bin/sh\nexec nsenter --net=/run/netns/%s -- %s \"$@\"\n", p.netns, env.binary)
	if err := os.WriteFile(p.binary, []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	if p.log, err = os.Create(filepath.Join(dir, "dockerd.log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.destroy(t) })
	for _, args := range [][]string{{"netns", "add", p.netns}, {"-n", p.netns, "link", "set", "lo", "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	if setup != nil {
		setup(p)
	}
	p.start(t)
	return p
}

func (p *privateEngine) start(t *testing.T) {
	t.Helper()
	p.cmd = exec.Command("nsenter", p.args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start private dockerd: %v", err)
	}
	p.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(p.cmd, p.done)

	api := p.api(t)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		cancel()
		if err == nil {
			return
		}
		select {
		case werr := <-p.done:
			p.done <- werr
			t.Fatalf("private dockerd exited at start (%v):\n%s", werr, p.logTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("private dockerd did not answer within 60s: %v\n%s", err, p.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends dockerd as an init system would: TERM, which stops its
// containers, then KILL if it is still there after a minute.
func (p *privateEngine) stop(t *testing.T) {
	t.Helper()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		t.Errorf("private dockerd ignored SIGTERM for a minute:\n%s", p.logTail())
	}
	p.cmd = nil
}

func (p *privateEngine) restart(t *testing.T) {
	t.Helper()
	p.stop(t)
	p.start(t)
}

func (p *privateEngine) api(t *testing.T) *client.Client {
	t.Helper()
	return engineClient(t, p.host)
}

// engineClient is a client of the Engine at host, closed when the test
// ends.
func engineClient(t *testing.T, host string) *client.Client {
	t.Helper()
	api, err := client.New(client.WithHost(host))
	if err != nil {
		t.Fatalf("client of the Engine at %s: %v", host, err)
	}
	t.Cleanup(func() { api.Close() })
	return api
}

// loadImages copies images from the shared Engine into this one, through
// the Engine API (save, then load), as no registry is reachable.
func (p *privateEngine) loadImages(t *testing.T, images ...string) {
	t.Helper()
	if err := copyImages(context.Background(), dockerAPI(t), p.api(t), images...); err != nil {
		t.Fatalf("load images into the private engine: %v", err)
	}
}

// destroy removes everything the private engine made: its objects (so
// its bridges go), the daemon, mounts left below its dir, the dir and its
// cgroups.
func (p *privateEngine) destroy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if p.cmd != nil {
		api := p.api(t)
		if list, err := api.ContainerList(ctx, client.ContainerListOptions{All: true}); err == nil {
			for _, c := range list.Items {
				_, _ = api.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			}
		}
		if list, err := api.NetworkList(ctx, client.NetworkListOptions{}); err == nil {
			for _, n := range list.Items {
				if n.Name != "host" && n.Name != "none" {
					_, _ = api.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
				}
			}
		}
		p.stop(t)
	}
	p.log.Close()
	for _, m := range mountsBelow(p.dir) {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
	if err := os.RemoveAll(p.dir); err != nil {
		t.Errorf("remove the private engine's dir: %v", err)
	}
	cgroups, _ := filepath.Glob("/sys/fs/cgroup/*/" + filepath.Base(p.dir))
	for _, cg := range cgroups {
		_ = os.Remove(cg)
	}
	if out, err := exec.Command("ip", "netns", "del", p.netns).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such file") {
		t.Errorf("remove the private engine's network namespace %s: %v: %s", p.netns, err, out)
	}
}

// mountsBelow lists mount points under dir, deepest first.
func mountsBelow(dir string) []string {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 1 && strings.HasPrefix(fields[1], dir+"/") {
			out = append([]string{fields[1]}, out...)
		}
	}
	return out
}

func (p *privateEngine) logTail() string {
	data, _ := os.ReadFile(filepath.Join(p.dir, "dockerd.log"))
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// objectsLabelled lists the containers, volumes and networks on api that
// carry label=value, or the label at all when value is "".
func objectsLabelled(t *testing.T, api *client.Client, label, value string) []string {
	t.Helper()
	ctx := context.Background()
	f := client.Filters{}.Add("label", label+"="+value)
	if value == "" {
		f = client.Filters{}.Add("label", label)
	}
	var names []string
	containers, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range containers.Items {
		names = append(names, fmt.Sprint(c.Names))
	}
	volumes, err := api.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range volumes.Items {
		names = append(names, v.Name)
	}
	networks, err := api.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range networks.Items {
		names = append(names, n.Name)
	}
	return names
}
