package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	cases := []struct {
		name     string
		flag     string
		env      string
		existing []string
		want     string
		wantErr  []string // substrings of the error; nil: no error
	}{
		{name: "nothing: built-in defaults", want: ""},
		{name: "default path exists", existing: []string{DefaultPath}, want: DefaultPath},
		{name: "flag wins over env and default", flag: "/f.toml", env: "/e.toml",
			existing: []string{"/f.toml", "/e.toml", DefaultPath}, want: "/f.toml"},
		{name: "flag missing is an error even if others exist", flag: "/f.toml", env: "/e.toml",
			existing: []string{"/e.toml", DefaultPath}, wantErr: []string{`"/f.toml"`, "--config"}},
		{name: "env wins over default", env: "/e.toml", existing: []string{"/e.toml", DefaultPath}, want: "/e.toml"},
		{name: "env missing is an error", env: "/e.toml", existing: []string{DefaultPath},
			wantErr: []string{`"/e.toml"`, "$DIND_EXECUTOR_CONFIG"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == EnvVar {
					return tc.env
				}
				return ""
			}
			exists := func(p string) bool {
				for _, e := range tc.existing {
					if p == e {
						return true
					}
				}
				return false
			}
			got, err := Resolve(tc.flag, getenv, exists)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Resolve = %q, want an error", got)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Resolve = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestLoadResolved(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte("[sandbox]\nmtu = 1400\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[sandbox]\nmtu = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvVar, "") // the test host's environment must not leak in

	c, path, err := LoadResolved(good)
	if err != nil || path != good || c.Sandbox.MTU != 1400 {
		t.Errorf("LoadResolved(good) = mtu %d, %q, %v", c.Sandbox.MTU, path, err)
	}
	if _, path, err := LoadResolved(bad); err == nil || path != bad {
		t.Errorf("LoadResolved(bad) = %q, %v; want the path and an error", path, err)
	}
	missing := filepath.Join(dir, "missing.toml")
	if _, _, err := LoadResolved(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("LoadResolved(missing) error = %v, want one naming %s", err, missing)
	}
	t.Setenv(EnvVar, good)
	if _, path, err := LoadResolved(""); err != nil || path != good {
		t.Errorf("LoadResolved via $%s = %q, %v; want %q", EnvVar, path, err, good)
	}
}

func TestExistsTreatsStatErrorsAsExisting(t *testing.T) {
	dir := t.TempDir()
	if exists(filepath.Join(dir, "nope")) {
		t.Error("exists(missing) = true")
	}
	if !exists(dir) {
		t.Error("exists(dir) = false")
	}
	// A path under a regular file fails Stat with ENOTDIR, not ENOENT:
	// it must count as existing so Load reports the real error.
	f := filepath.Join(dir, "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if !exists(filepath.Join(f, "x")) {
		t.Error("exists(file/x) = false, want true (not ErrNotExist)")
	}
}
