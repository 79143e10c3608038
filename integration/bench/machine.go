package main

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// describeMachine says where the figures come from and how busy the host
// was when the run began.
func describeMachine(ctx context.Context, api *client.Client, root string) Machine {
	m := Machine{
		Date:         time.Now().UTC().Format("2006-01-02 15:04 MST"),
		CPUs:         runtime.NumCPU(),
		MemoryGiB:    float64(memTotalKB()) / (1 << 20),
		Kernel:       readTrim("/proc/sys/kernel/osrelease"),
		GoVersion:    runtime.Version(),
		Commit:       gitCommit(root),
		LoadStart:    loadAvg(),
		OtherRunning: -1,
	}
	if ver, err := api.ServerVersion(ctx, client.ServerVersionOptions{}); err == nil {
		m.DockerVersion, m.DockerAPI = ver.Version, ver.APIVersion
	}
	// Other tests sharing the Engine skew every figure.
	if res, err := api.ContainerList(ctx, client.ContainerListOptions{}); err == nil {
		m.OtherRunning = len(res.Items)
	}
	return m
}

// gitCommit is the short commit, with "+changes" when the tree differs.
func gitCommit(dir string) string {
	cmd := exec.Command("git", "rev-parse", "--short", "HEAD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	commit := strings.TrimSpace(string(out))
	status := exec.Command("git", "status", "--porcelain", "--untracked-files=no")
	status.Dir = dir
	if out, err := status.Output(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
		commit += "+changes"
	}
	return commit
}

// loadAvg is the 1-minute load average: other work on the host skews every
// figure, so the report says how busy it was.
func loadAvg() string {
	fields := strings.Fields(readTrim("/proc/loadavg"))
	if len(fields) == 0 {
		return "?"
	}
	return fields[0]
}

func readTrim(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(data))
}
