package stages

import (
	"time"

	"gitlab.com/dind-executor/dind-executor/config"
	"gitlab.com/dind-executor/dind-executor/executor"
)

// certMargin keeps the job's certificates valid a while past its timeout,
// for after_script, artifact upload and cleanup.
const certMargin = time.Hour

// Spec turns the operator's config and the job into the executor's request.
func (h *Hooks) Spec(id executor.Identity, job *JobResponse) executor.Spec {
	c := h.Config
	buildImage := job.Image.Name
	if buildImage == "" {
		buildImage = c.Sandbox.DefaultImage
	}
	helperImage := c.Sandbox.HelperImage
	if helperImage == "" {
		helperImage = DefaultHelperImage(h.Env.RunnerVersion, h.Env.RunnerRevision, h.Env.RunnerArch)
	}
	pull := make([]executor.PullPolicy, 0, len(c.Sandbox.PullPolicy))
	for _, p := range c.Sandbox.PullPolicy {
		pull = append(pull, executor.PullPolicy(p))
	}
	security := executor.SecurityPrivileged
	if c.Sandbox.DaemonSecurity == config.DaemonSecurityCapabilities {
		security = executor.SecurityCapabilities
	}
	return executor.Spec{
		Identity:       id,
		DaemonImage:    c.Sandbox.DindImage,
		BuildImage:     buildImage,
		HelperImage:    helperImage,
		Pull:           pull,
		DaemonSecurity: security,
		MTU:            c.Sandbox.MTU,
		ReadyTimeout:   c.Sandbox.ReadyTimeout.Duration,
		CertLifetime:   time.Duration(job.TimeoutSeconds())*time.Second + certMargin,
		BuildsDir:      c.Sandbox.BuildsDir,
		CacheDir:       c.Sandbox.CacheDir,
		ExtraBinds:     c.Sandbox.Volumes,
		Limits: executor.Limits{
			NanoCPUs:    c.Limits.NanoCPUs(),
			MemoryBytes: c.Limits.MemoryBytes,
			Pids:        c.Limits.PIDs,
		},
		Log: h.Stdout,
	}
}
