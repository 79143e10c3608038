package config

import "testing"

func TestCacheMaxSizeBytes(t *testing.T) {
	c, err := Load("testdata/valid-cache.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Cache.Layers != CacheLayersProject || c.Cache.MaxSizeBytes != 20<<30 {
		t.Errorf("cache = %+v, want the project layer cache capped at 20 GiB", c.Cache)
	}
	if d := Default(); d.Cache.Layers != "" {
		t.Errorf("the layer cache must be opt-in, default is %q", d.Cache.Layers)
	}
}
