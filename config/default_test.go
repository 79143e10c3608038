package config

import (
	"reflect"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	d := Default()
	checks := []struct {
		name      string
		got, want any
	}{
		{"engine.host", d.Engine.Host, ""},
		{"sandbox.dind_image", d.Sandbox.DindImage, "docker:27-dind"},
		{"sandbox.default_image", d.Sandbox.DefaultImage, "docker:27-cli"},
		{"sandbox.helper_image", d.Sandbox.HelperImage, ""},
		{"sandbox.daemon_security", d.Sandbox.DaemonSecurity, "privileged"},
		{"sandbox.pull_policy", d.Sandbox.PullPolicy, []PullPolicy{"always"}},
		{"sandbox.mtu", d.Sandbox.MTU, 0},
		{"sandbox.ready_timeout", d.Sandbox.ReadyTimeout.Duration, 60 * time.Second},
		{"sandbox.volumes", len(d.Sandbox.Volumes), 0},
		{"sandbox.builds_dir", d.Sandbox.BuildsDir, "/builds"},
		{"sandbox.cache_dir", d.Sandbox.CacheDir, "/cache"},
		{"limits.cpus", d.Limits.CPUs, 0.0},
		{"limits.memory", d.Limits.Memory, ""},
		{"limits.memory bytes", d.Limits.MemoryBytes, int64(0)},
		{"limits.pids", d.Limits.PIDs, int64(0)},
		{"nano cpus", d.Limits.NanoCPUs(), int64(0)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	if err := d.Validate(); err != nil {
		t.Errorf("Default() does not validate: %v", err)
	}
}

// Decoding writes into the default slices, so each call must own its own.
func TestDefaultIsFresh(t *testing.T) {
	a := Default()
	a.Sandbox.PullPolicy[0] = PullNever
	if b := Default(); b.Sandbox.PullPolicy[0] != PullAlways {
		t.Errorf("Default() shares its pull_policy slice: got %v", b.Sandbox.PullPolicy)
	}
}

func TestParseEmptyIsDefault(t *testing.T) {
	for _, in := range []string{"", "# comment only\n", "[engine]\n[sandbox]\n[limits]\n"} {
		got, err := Parse([]byte(in))
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if !reflect.DeepEqual(got, Default()) {
			t.Errorf("Parse(%q) = %+v, want Default()", in, got)
		}
	}
}
