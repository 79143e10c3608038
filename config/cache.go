package config

import (
	"github.com/docker/go-units"
)

// Cache is the opt-in per-project layer cache: the sandbox daemon's data
// root lives on a volume owned by one project, so the next job of that
// project starts with its layers.
type Cache struct {
	// Layers is "" (off: every daemon starts empty) or "project".
	Layers string `toml:"layers"`
	// MaxSize caps a project's layer volume, e.g. "20g"; least recently
	// created images are pruned at teardown until it fits. Empty: no cap.
	MaxSize string `toml:"max_size"`
	// MaxSizeBytes is MaxSize in bytes, filled by Parse/Load; it is not a key.
	MaxSizeBytes int64 `toml:"-"`
}

// CacheLayersProject is the value of cache.layers that turns the cache on.
const CacheLayersProject = "project"

// minCacheSize keeps a cap from being set so low that nothing survives.
const minCacheSize = 64 << 20

func (c Cache) validate(add addFunc) {
	switch c.Layers {
	case "", CacheLayersProject:
	default:
		add("cache.layers = %q is not supported: use %q (a layer cache per project) or leave it empty (off)", c.Layers, CacheLayersProject)
	}
	if c.MaxSize == "" {
		return
	}
	n, err := units.RAMInBytes(c.MaxSize)
	switch {
	case err != nil:
		add("cache.max_size = %q is not a size: use e.g. \"20g\" or \"512m\"", c.MaxSize)
	case n < minCacheSize:
		add("cache.max_size = %q is below the 64m minimum: a cap that small keeps nothing", c.MaxSize)
	}
}
