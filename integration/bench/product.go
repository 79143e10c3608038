package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// product is the dind-executor binary under test and the configs it runs
// with. Jobs reach their git repositories (and the runner image's saved
// base images) through mountDir, bind-mounted read-only into every sandbox
// at seedjob.RepoMount by the config.
type product struct {
	binary     string // dind-executor
	work       string // the invocation's temp dir
	mountDir   string
	config     string // the base config's TOML
	configPath string
}

// newProduct writes the base config: seedjob's (local images, the
// capabilities profile, pull if not present), with mountDir as the mount.
func newProduct(binary, work string) (*product, error) {
	p := &product{binary: binary, work: work, mountDir: filepath.Join(work, "git")}
	if err := os.MkdirAll(p.mountDir, 0o755); err != nil {
		return nil, fmt.Errorf("mount dir: %w", err)
	}
	p.config = seedjob.Config(p.mountDir)
	var err error
	if p.configPath, err = p.writeConfig("config.toml", ""); err != nil {
		return nil, err
	}
	return p, nil
}

// writeConfig writes the base config plus extra TOML tables under name.
func (p *product) writeConfig(name, extra string) (string, error) {
	return p.writeConfigText(name, p.config+extra)
}

// writeConfigText writes a whole config under name.
func (p *product) writeConfigText(name, text string) (string, error) {
	path := filepath.Join(p.work, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return "", fmt.Errorf("write config %s: %w", name, err)
	}
	return path, nil
}

// mountPath is where a file under mountDir appears inside a sandbox.
func (p *product) mountPath(name string) string { return seedjob.RepoMount + "/" + name }

// emulator plays GitLab Runner against the binary with configPath; it
// records each hook's wall time and peak RSS.
func (p *product) emulator(configPath string) *runner.Emulator {
	return &runner.Emulator{
		Binary:          p.binary,
		Args:            []string{"--config", configPath},
		PrepareAttempts: 1, // a failed prepare is a failed measurement, not a retry
		TempRoot:        p.work,
	}
}

// layerCacheConfig writes the base config with the per-project layer cache
// on and returns its path, or "" when this build of dind-executor refuses
// the setting (the config hook validates the whole file).
func (p *product) layerCacheConfig(ctx context.Context) (string, error) {
	path, err := p.writeConfig("config-layer-cache.toml", "\n[cache]\nlayers = \"project\"\n")
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, p.binary, "--config", path, "config")
	cmd.Dir = p.work
	if err := cmd.Run(); err != nil {
		return "", nil
	}
	return path, nil
}
