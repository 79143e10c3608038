package stages

import (
	"encoding/json"
	"fmt"

	"gitlab.com/gitlab-org/gitlab-runner/executors/custom/api"
)

// DriverName is how the runner's job log names us ("Using Custom executor
// with driver dind-executor ...").
const DriverName = "dind-executor"

// ConfigHook prints the runner's config_exec JSON: where the builds and
// cache volumes are mounted, and who we are. Nothing else goes to stdout:
// the runner parses all of it.
func (h *Hooks) ConfigHook() error {
	buildsDir, cacheDir := h.Config.Sandbox.BuildsDir, h.Config.Sandbox.CacheDir
	shared := false
	hostname := h.Hostname
	name, version := DriverName, h.Version
	out := api.ConfigExecOutput{
		Driver:            &api.DriverInfo{Name: &name, Version: &version},
		Hostname:          &hostname,
		BuildsDir:         &buildsDir,
		CacheDir:          &cacheDir,
		BuildsDirIsShared: &shared,
	}
	data, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("encode config output: %w", err)
	}
	if _, err := h.Stdout.Write(data); err != nil {
		return fmt.Errorf("write config output: %w", err)
	}
	return nil
}
