package config

// validateRootlessCache refuses the layer cache with the rootless daemon
// profile: a project's layer volume holds a data root written by a root
// dockerd (files owned by the ids of the images' own users), which a
// rootless dockerd, whose ids are shifted into its user namespace, cannot
// use, and the other way round; the volumes are not told apart by profile.
func validateRootlessCache(add addFunc, s Sandbox, c Cache) {
	if s.DaemonSecurity == DaemonSecurityRootless && c.Layers != "" {
		add("cache.layers = %q is not supported with sandbox.daemon_security = %q: a project's layer volume holds a root daemon's data root, "+
			"which a rootless daemon cannot use; leave cache.layers empty, or use another daemon_security", c.Layers, DaemonSecurityRootless)
	}
}
