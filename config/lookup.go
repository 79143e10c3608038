package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Where Resolve looks for the config file, after the --config flag.
const (
	EnvVar      = "DIND_EXECUTOR_CONFIG"
	DefaultPath = "/etc/dind-executor/config.toml"
)

// Resolve picks the config file: the --config flag if set, else
// $DIND_EXECUTOR_CONFIG, else DefaultPath if it exists, else "" meaning the
// built-in defaults. A path the operator named explicitly must exist: falling
// back to defaults would silently ignore their settings.
func Resolve(flagPath string, getenv func(string) string, fileExists func(string) bool) (string, error) {
	if flagPath != "" {
		if !fileExists(flagPath) {
			return "", fmt.Errorf("config file %q given by --config does not exist", flagPath)
		}
		return flagPath, nil
	}
	if p := getenv(EnvVar); p != "" {
		if !fileExists(p) {
			return "", fmt.Errorf("config file %q given by $%s does not exist", p, EnvVar)
		}
		return p, nil
	}
	if fileExists(DefaultPath) {
		return DefaultPath, nil
	}
	return "", nil
}

// LoadResolved resolves the config file for the CLI and loads it. It returns
// the path used, "" when running on Default().
func LoadResolved(flagPath string) (Config, string, error) {
	path, err := Resolve(flagPath, os.Getenv, exists)
	if err != nil {
		return Config{}, "", err
	}
	if path == "" {
		return Default(), "", nil
	}
	c, err := Load(path)
	if err != nil {
		return Config{}, path, err
	}
	return c, path, nil
}

// exists treats any Stat error other than "not found" (e.g. permission
// denied) as existing, so Load reports the real error instead of the
// executor quietly running on defaults.
func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
