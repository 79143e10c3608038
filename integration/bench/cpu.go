package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cpuProbe reads the CPU time used so far by the pieces an exec stream goes
// through on the host: the Engine (dockerd), containerd, the container's
// shim and the container's own processes (its cgroup). Differences between
// two probes say where a stage's time was spent.
type cpuProbe struct {
	dockerd, containerd, shim []int
	cgroupFile                string
	ticks                     float64
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100

func newCPUProbe(containerID string) *cpuProbe {
	p := &cpuProbe{ticks: clockTicks}
	self, _ := os.Readlink("/proc/self/ns/mnt")
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// Only host processes: the inner daemons of sandboxes are dockerd
		// and containerd too, in their own mount namespaces.
		if ns, _ := os.Readlink(filepath.Join("/proc", e.Name(), "ns/mnt")); ns != self {
			continue
		}
		comm := readTrim(filepath.Join("/proc", e.Name(), "comm"))
		switch comm {
		case "dockerd":
			p.dockerd = append(p.dockerd, pid)
		case "containerd":
			p.containerd = append(p.containerd, pid)
		case "containerd-shim":
			cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if strings.Contains(string(cmdline), containerID) {
				p.shim = append(p.shim, pid)
			}
		}
	}
	for _, f := range []string{
		"/sys/fs/cgroup/cpuacct/docker/" + containerID + "/cpuacct.usage",       // v1, cgroupfs driver
		"/sys/fs/cgroup/cpu,cpuacct/docker/" + containerID + "/cpuacct.usage",   // v1, merged hierarchy
		"/sys/fs/cgroup/system.slice/docker-" + containerID + ".scope/cpu.stat", // v2, systemd driver
		"/sys/fs/cgroup/docker/" + containerID + "/cpu.stat",                    // v2, cgroupfs driver
	} {
		if _, err := os.Stat(f); err == nil {
			p.cgroupFile = f
			break
		}
	}
	return p
}

// cpuSample is cumulative CPU time per component.
type cpuSample map[string]time.Duration

const (
	cpuDockerd    = "dockerd (the Engine)"
	cpuContainerd = "containerd"
	cpuShim       = "containerd-shim of the build container"
	cpuContainer  = "the stage's processes in the container (bash, head)"
	cpuHost       = "whole host: every process, ours and others' (busy time)"
	cpuSteal      = "stolen by the hypervisor"
)

func (p *cpuProbe) sample() cpuSample {
	s := cpuSample{}
	s[cpuDockerd] = p.procs(p.dockerd)
	s[cpuContainerd] = p.procs(p.containerd)
	s[cpuShim] = p.procs(p.shim)
	if d, ok := p.cgroup(); ok {
		s[cpuContainer] = d
	}
	if busy, steal, ok := hostCPU(); ok {
		s[cpuHost], s[cpuSteal] = busy, steal
	}
	return s
}

// hostCPU is the host's busy and stolen CPU time so far, from the first
// line of /proc/stat: user nice system idle iowait irq softirq steal ...
func hostCPU() (busy, steal time.Duration, ok bool) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, false
	}
	ticks := func(i int) time.Duration {
		v, _ := strconv.ParseFloat(f[i], 64)
		return time.Duration(v / clockTicks * float64(time.Second))
	}
	busy = ticks(1) + ticks(2) + ticks(3) + ticks(6) + ticks(7)
	return busy, ticks(8), true
}

func (p *cpuProbe) procs(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// Fields after the ")" that ends comm: state is field 3, utime 14, stime 15.
		rest := string(data)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 13 {
			continue
		}
		utime, _ := strconv.ParseFloat(f[11], 64)
		stime, _ := strconv.ParseFloat(f[12], 64)
		total += time.Duration((utime + stime) / p.ticks * float64(time.Second))
	}
	return total
}

func (p *cpuProbe) cgroup() (time.Duration, bool) {
	if p.cgroupFile == "" {
		return 0, false
	}
	data, err := os.ReadFile(p.cgroupFile)
	if err != nil {
		return 0, false
	}
	text := strings.TrimSpace(string(data))
	if strings.HasSuffix(p.cgroupFile, "cpuacct.usage") {
		ns, err := strconv.ParseInt(text, 10, 64)
		return time.Duration(ns), err == nil
	}
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			us, err := strconv.ParseInt(v, 10, 64)
			return time.Duration(us) * time.Microsecond, err == nil
		}
	}
	return 0, false
}

// since is the CPU each component used from before to s.
func (s cpuSample) since(before cpuSample) cpuSample {
	out := cpuSample{}
	for k, v := range s {
		if b, ok := before[k]; ok {
			out[k] = v - b
		}
	}
	return out
}
