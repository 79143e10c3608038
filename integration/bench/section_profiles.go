package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// daemonProfileRun is one daemon profile row 1b measures: a config and a
// project of its own.
type daemonProfileRun struct {
	name    string // sandbox.daemon_security
	config  string // path
	project benchProject
	samples []prepareSample
}

// profilesSection: row 1b, the cold prepare of each daemon profile that
// runs on this Engine, in the same invocation, interleaved: the product
// config (capabilities) and the same config with daemon_security =
// "rootless" and the rootless dind image. Each round prepares and cleans up
// a sandbox with each profile; the profile going first alternates. The
// privileged profile gets a row without a figure saying why (on these
// machines the Engine cannot run it).
func profilesSection(ctx context.Context, b *bench, rep *Report) error {
	if !b.opts.wants("profiles") {
		return nil
	}
	rootless, why, err := b.rootlessConfig(ctx)
	if err != nil {
		return err
	}
	if rootless == "" {
		rep.Notes = append(rep.Notes, "row 1b not measured: "+why)
		return nil
	}
	profiles := []*daemonProfileRun{
		{name: "capabilities", config: b.product.configPath, project: b.inv.newProject("profile-capabilities")},
		{name: "rootless", config: rootless, project: b.inv.newProject("profile-rootless")},
	}
	events := startEventLog(ctx, b.api)
	defer events.close()
	for round := range b.opts.runs {
		for k := range profiles {
			p := profiles[(round+k)%len(profiles)]
			b.log.printf("daemon profiles, round %d/%d: cold prepare, %s profile", round+1, b.opts.runs, p.name)
			sample, _, err := coldPrepare(ctx, b, p.config, p.project, "bench-profile-"+p.name)
			if err != nil {
				return fmt.Errorf("%s profile: %w", p.name, err)
			}
			// The hook says which profile started the daemon.
			if _, ok := sample.run.lineAt("(" + p.name + ", certificates valid until"); !ok {
				return fmt.Errorf("%s profile: prepare did not start a %s daemon", p.name, p.name)
			}
			p.samples = append(p.samples, sample)
		}
	}
	events.settle()
	profileRows(rep, events, profiles[0], profiles[1])
	return nil
}

// rootlessConfig writes the product config with the rootless profile and
// its image, and returns its path; "" and why when the image is missing or
// the binary refuses the profile (the config hook validates the whole
// file).
func (b *bench) rootlessConfig(ctx context.Context) (path, why string, err error) {
	if _, err := b.api.ImageInspect(ctx, seedjob.RootlessDaemonImage); err != nil {
		return "", fmt.Sprintf("image %s is missing (%v): run integration/images/build.sh", seedjob.RootlessDaemonImage, err), nil
	}
	if path, err = b.product.writeConfigText("config-rootless.toml", seedjob.RootlessConfig(b.product.mountDir)); err != nil {
		return "", "", err
	}
	cmd := exec.CommandContext(ctx, b.product.binary, "--config", path, "config")
	cmd.Dir = b.product.work
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Sprintf("this build of dind-executor refuses daemon_security = \"rootless\": %v: %s", err, strings.TrimSpace(string(out))), nil
	}
	return path, "", nil
}

// profileRows adds row 1b: each profile's cold prepare and its daemon
// start → ready, the rootless profile's against the capabilities one's,
// and a privileged profile row without a figure, saying why.
func profileRows(rep *Report, events *eventLog, capabilities, rootless *daemonProfileRun) {
	prepare := func(p *daemonProfileRun) (hook, ready []float64) {
		for _, s := range p.samples {
			hook = append(hook, seconds(s.run.Wall))
			marks, started, _ := prepareMarks(events, s)
			if r := marks[msReady]; !started.IsZero() && !r.IsZero() {
				ready = append(ready, seconds(r.Sub(started)))
			}
		}
		return hook, ready
	}
	capHook, capReady := prepare(capabilities)
	rlHook, rlReady := prepare(rootless)
	rep.Baselines = append(rep.Baselines, Baseline{Key: "C1b",
		Description: "row 1b's capabilities profile (the product config), measured in the same rounds as the rootless profile, interleaved (the profile going first alternates)"})
	rep.Rows = append(rep.Rows,
		Row{Section: "1b", Key: "profile_capabilities_prepare", Name: "prepare hook → TLS daemon ready, cold: capabilities profile (product config)", Unit: "s",
			Product: summarize(capHook)},
		Row{Section: "1b", Key: "profile_capabilities_daemon_start_to_ready", Name: "  of which: daemon container start → ready", Unit: "s",
			Product: summarize(capReady)},
		Row{Section: "1b", Key: "profile_rootless_prepare", Name: "prepare hook → TLS daemon ready, cold: rootless profile", Unit: "s",
			Product: summarize(rlHook), Baseline: summarize(capHook), BaselineKey: "C1b"},
		Row{Section: "1b", Key: "profile_rootless_daemon_start_to_ready", Name: "  of which: daemon container start → ready", Unit: "s",
			Product: summarize(rlReady), Baseline: summarize(capReady), BaselineKey: "C1b"},
	)
	note := "not measured: this section measures the capabilities and rootless profiles only"
	if why := privilegedUnavailable(); why != "" {
		note = "not measured: this Engine cannot run the privileged profile: " + why
	}
	rep.Rows = append(rep.Rows, Row{Section: "1b", Key: "profile_privileged_prepare",
		Name: "prepare hook → TLS daemon ready, cold: privileged profile", Unit: "s", Note: note})
}

// capSysResource is CAP_SYS_RESOURCE's bit in a capability set.
const capSysResource = 24

// privilegedUnavailable says why the Engine cannot run a --privileged
// daemon container ("" when nothing says so): --privileged asks for every
// capability, and the runtime refuses one outside the host's bounding set,
// read from the host's init (the bench runs beside the Engine, as root).
func privilegedUnavailable() string {
	status, err := os.ReadFile("/proc/1/status")
	if err != nil {
		return ""
	}
	return lacksSysResource(string(status))
}

// lacksSysResource says, from a /proc/<pid>/status, that the process's
// bounding set lacks CAP_SYS_RESOURCE ("" when it has it or when status
// does not say).
func lacksSysResource(status string) string {
	for _, line := range strings.Split(status, "\n") {
		v, ok := strings.CutPrefix(line, "CapBnd:")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		set, err := strconv.ParseUint(v, 16, 64)
		if err != nil || set&(1<<capSysResource) != 0 {
			return ""
		}
		return fmt.Sprintf("CAP_SYS_RESOURCE is not in the host's capability bounding set (/proc/1/status CapBnd %s), and --privileged asks for every capability", v)
	}
	return ""
}
