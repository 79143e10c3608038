package executor

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

func TestDaemonContainerRootless(t *testing.T) {
	s := testSpec()
	s.Daemon.Security = SecurityRootless
	s.Daemon.imageUser = "rootless"
	c := daemonContainer(s, "net", 1450, "dataroot-volume", []string{"dockerd-entrypoint.sh"})
	h := c.host
	if h.Privileged {
		t.Fatal("the rootless daemon container is privileged")
	}
	if !slices.Equal(h.CapDrop, []string{"ALL"}) || !slices.Equal(h.CapAdd, []string{"SETUID", "SETGID"}) {
		t.Errorf("caps: drop %v add %v, want drop [ALL] add [SETUID SETGID]", h.CapDrop, h.CapAdd)
	}
	if want := []string{"seccomp=" + rootlessSeccompProfile, "apparmor=unconfined"}; !slices.Equal(h.SecurityOpt, want) {
		t.Errorf("security opts %.200v, want the rootless seccomp profile and apparmor=unconfined", h.SecurityOpt)
	}
	if h.MaskedPaths == nil || len(h.MaskedPaths) != 0 || h.ReadonlyPaths == nil || len(h.ReadonlyPaths) != 0 {
		t.Errorf("masked %v read-only %v, want both empty and set (systempaths=unconfined)", h.MaskedPaths, h.ReadonlyPaths)
	}
	if want := []container.DeviceMapping{{PathOnHost: "/dev/net/tun", PathInContainer: "/dev/net/tun", CgroupPermissions: "rwm"}}; !slices.Equal(h.Devices, want) {
		t.Errorf("devices %v, want %v", h.Devices, want)
	}
	if len(h.DeviceCgroupRules) != 0 {
		t.Errorf("device cgroup rules %v, want none", h.DeviceCgroupRules)
	}
	if want := []string{"dataroot-volume:" + rootlessDataRoot, "/sys:/sys:rw"}; !slices.Equal(h.Binds, want) {
		t.Errorf("binds %v, want %v (no cgroup tree, data root at the image's)", h.Binds, want)
	}
	if c.config.User != "rootless" {
		t.Errorf("user %q, want the image's (rootless)", c.config.User)
	}
	if !slices.Equal(c.config.Entrypoint, []string{"sh", rootlessScriptPath}) {
		t.Errorf("entrypoint %q, want the executor's rootless script", c.config.Entrypoint)
	}
	cmd := strings.Join(c.config.Cmd, " ")
	for _, want := range []string{"--host=tcp://0.0.0.0:2376", "--tlsverify", "--tlscacert /certs/server/ca.pem", "--tlscert /certs/server/cert.pem",
		"--tlskey /certs/server/key.pem", "--host=unix://" + rootlessSocket, "--data-root=" + rootlessDataRoot, "--mtu=1450"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("dockerd flags %q lack %q", cmd, want)
		}
	}
	// Every right the container gets is one of the documented ones.
	if len(RootlessRights()) != len(rootlessRights) {
		t.Fatal("RootlessRights")
	}
	for _, r := range rootlessRights {
		if r.Why == "" {
			t.Errorf("right %s %s has no justification", r.Kind, r.Value)
		}
	}
}

// The other profiles are untouched by the rootless one.
func TestDaemonContainerNotRootless(t *testing.T) {
	for _, sec := range []DaemonSecurity{SecurityPrivileged, SecurityCapabilities} {
		s := testSpec()
		s.Daemon.Security = sec
		c := daemonContainer(s, "net", 1450, "v", []string{"dockerd-entrypoint.sh"})
		if c.config.User != "" || len(c.host.Devices) != 0 || c.host.Binds[0] != "v:/var/lib/docker" {
			t.Errorf("%s: user %q devices %v binds %v", sec, c.config.User, c.host.Devices, c.host.Binds)
		}
	}
}

func TestRootlessScriptIsShell(t *testing.T) {
	// The child branch execs dockerd with the flags; the parent branch
	// publishes 2376 and waits for /dev/net/tun.
	for _, want := range []string{`exec dockerd "$@"`, "--publish=0.0.0.0:2376:2376/tcp", "--cgroupns", `sh "$0" "$@"`, rootlessTun} {
		if !strings.Contains(rootlessScript, want) {
			t.Errorf("rootless script lacks %q", want)
		}
	}
}

func TestRootlessScriptSyntax(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	if out, err := exec.Command(sh, "-n", "-c", rootlessScript).CombinedOutput(); err != nil {
		t.Fatalf("sh -n: %v\n%s", err, out)
	}
}

// The seccomp profile lets the user namespace be made and used, and keeps
// refusing what Docker's default refuses to everyone.
func TestRootlessSeccompProfile(t *testing.T) {
	var p struct {
		DefaultAction string `json:"defaultAction"`
		Syscalls      []struct {
			Names    []string          `json:"names"`
			Action   string            `json:"action"`
			Args     []json.RawMessage `json:"args"`
			Includes map[string]any    `json:"includes"`
			Excludes map[string]any    `json:"excludes"`
		} `json:"syscalls"`
	}
	if err := json.Unmarshal([]byte(rootlessSeccompProfile), &p); err != nil {
		t.Fatal(err)
	}
	if p.DefaultAction != "SCMP_ACT_ERRNO" {
		t.Fatalf("default action %s", p.DefaultAction)
	}
	allowed := map[string]bool{}
	for _, s := range p.Syscalls {
		if s.Includes["caps"] != nil || s.Excludes["caps"] != nil {
			t.Errorf("rule %v depends on capabilities", s.Names)
		}
		if s.Action == "SCMP_ACT_ALLOW" && len(s.Args) == 0 && s.Includes["arches"] == nil && s.Includes["minKernel"] == nil {
			for _, n := range s.Names {
				allowed[n] = true
			}
		}
	}
	for _, n := range []string{"unshare", "clone", "clone3", "setns", "mount", "umount2", "pivot_root", "keyctl", "sethostname", "chroot"} {
		if !allowed[n] {
			t.Errorf("%s is not allowed", n)
		}
	}
	for _, n := range []string{"io_uring_setup", "io_uring_enter", "userfaultfd", "kexec_load", "kexec_file_load", "vm86", "uselib", "nfsservctl", "swapon"} {
		if allowed[n] {
			t.Errorf("%s is allowed", n)
		}
	}
	if got := SummarizeSecurityOpt("seccomp=" + rootlessSeccompProfile); !strings.HasPrefix(got, "seccomp=profile sha256:") || len(got) != len("seccomp=profile sha256:")+12 {
		t.Errorf("summary %q", got)
	}
	if got := SummarizeSecurityOpt("seccomp=unconfined"); got != "seccomp=unconfined" {
		t.Errorf("summary %q", got)
	}
}
