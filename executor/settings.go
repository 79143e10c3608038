package executor

import "gitlab.com/dind-executor/dind-executor/config"

// SettingsFromConfig is the one place the operator's config becomes the
// executor's settings.
func SettingsFromConfig(c config.Config) Settings {
	pull := make([]PullPolicy, 0, len(c.Sandbox.PullPolicy))
	for _, p := range c.Sandbox.PullPolicy {
		pull = append(pull, PullPolicy(p))
	}
	security := SecurityPrivileged
	switch c.Sandbox.DaemonSecurity {
	case config.DaemonSecurityCapabilities:
		security = SecurityCapabilities
	case config.DaemonSecurityRootless:
		security = SecurityRootless
	}
	s := Settings{
		Daemon: DaemonSpec{
			Image:        ImageRef{Name: c.Sandbox.DindImage, Pull: pull},
			Security:     security,
			MTU:          c.Sandbox.MTU,
			ReadyTimeout: c.Sandbox.ReadyTimeout.Duration,

			NetworkMTU:         c.Daemon.NetworkMTU,
			RegistryMirrors:    c.Daemon.RegistryMirrors,
			InsecureRegistries: c.Daemon.InsecureRegistries,
			RegistryCAs:        c.Daemon.RegistryCertsPEM,
			Proxy:              Proxy{HTTP: c.Daemon.HTTPProxy, HTTPS: c.Daemon.HTTPSProxy, No: c.Daemon.NoProxy},
			DNS:                c.Daemon.DNS,
			Features:           c.Daemon.Features,
		},
		ExtraHosts:  c.Daemon.ExtraHosts,
		BuildsDir:   c.Sandbox.BuildsDir,
		CacheDir:    c.Sandbox.CacheDir,
		ExtraBinds:  c.Sandbox.Volumes,
		Limits:      Limits{NanoCPUs: c.Limits.NanoCPUs(), MemoryBytes: c.Limits.MemoryBytes, Pids: c.Limits.PIDs, LogBytes: c.Limits.LogSizeBytes},
		ServiceWait: c.Sandbox.WaitForServicesTimeout.Duration,
		PoolSize:    c.Pool.Size,
	}
	if c.Cache.Layers == config.CacheLayersProject {
		s.LayerCache = &LayerCache{MaxBytes: c.Cache.MaxSizeBytes}
	}
	return s
}
