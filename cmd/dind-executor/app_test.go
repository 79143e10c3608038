package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(good, []byte("[sandbox]\nbuilds_dir = \"/b\"\ncache_dir = \"/c\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("[sandbox]\nmtu = 12\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SYSTEM_FAILURE_EXIT_CODE": "2", "BUILD_FAILURE_EXIT_CODE": "1"}
	getenv := func(k string) string { return env[k] }

	cases := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"version", []string{"version"}, 0, "dind-executor dev", ""},
		{"config hook prints the runner's JSON", []string{"--config", good, "config"}, 0, `"builds_dir":"/b"`, ""},
		{"bad config is a system failure", []string{"--config", bad, "config"}, 2, "", "sandbox.mtu"},
		{"missing config file", []string{"--config", filepath.Join(dir, "nope.toml"), "config"}, 2, "", "nope.toml"},
		{"run needs two arguments", []string{"--config", good, "run", "only-one"}, 2, "", "accepts 2 arg"},
		{"unknown hook", []string{"bogus"}, 2, "", "unknown command"},
		{"prepare outside a runner", []string{"--config", good, "prepare"}, 2, "", "JOB_RESPONSE_FILE is not set"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Run(tc.args, Streams{Out: &out, Err: &errOut}, getenv)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d; stderr: %s", code, tc.wantCode, errOut.String())
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("stdout %q lacks %q", out.String(), tc.wantOut)
			}
			if !strings.Contains(errOut.String(), tc.wantErr) {
				t.Errorf("stderr %q lacks %q", errOut.String(), tc.wantErr)
			}
		})
	}
}

// The runner parses all of config's stdout: it must be exactly one JSON object.
func TestConfigHookStdoutIsOnlyJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Run([]string{"--config", "/dev/null", "config"}, Streams{Out: &out, Err: &errOut}, func(string) string { return "" })
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var doc map[string]any
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("stdout is not one JSON object: %v: %q", err, out.String())
	}
	for _, key := range []string{"builds_dir", "cache_dir", "builds_dir_is_shared", "hostname", "driver"} {
		if _, ok := doc[key]; !ok {
			t.Errorf("config output lacks %q: %s", key, out.String())
		}
	}
}
