package config

import (
	"strings"
	"testing"
)

func TestAuditAndLogDefaults(t *testing.T) {
	d := Default()
	if d.Audit.Path != "/var/log/dind-executor/audit.jsonl" {
		t.Errorf("audit.path = %q", d.Audit.Path)
	}
	if d.Log != (Log{Format: "text", Level: "warning", File: ""}) {
		t.Errorf("log = %+v, want text, warning, stderr", d.Log)
	}
}

func TestParseAuditAndLog(t *testing.T) {
	c, err := Load("testdata/valid-audit-log.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := Log{Format: "json", Level: "debug", File: "/var/log/dind-executor/executor.log"}
	if c.Audit.Path != "/srv/audit/dind-executor.jsonl" || c.Log != want {
		t.Errorf("audit %+v log %+v", c.Audit, c.Log)
	}
}

func TestValidateAuditAndLog(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*Config)
		want   [][]string
	}{
		{"every level", func(c *Config) {
			for _, l := range []string{"trace", "debug", "info", "warning", "warn", "error"} {
				c.Log.Level = l
				if err := c.Validate(); err != nil {
					t.Errorf("level %q: %v", l, err)
				}
			}
		}, nil},
		{"audit path empty", func(c *Config) { c.Audit.Path = "" }, [][]string{{"audit.path is empty"}}},
		{"audit path is a directory", func(c *Config) { c.Audit.Path = "/var/log/" },
			[][]string{{"audit.path", `"/var/log/"`, "directory", "/var/log/audit.jsonl"}}},
		{"level upper case", func(c *Config) { c.Log.Level = "DEBUG" }, [][]string{{"log.level", `"DEBUG"`}}},
		{"format empty", func(c *Config) { c.Log.Format = "" }, [][]string{{"log.format", `""`}}},
		{"log file is a directory", func(c *Config) { c.Log.File = "/var/log/" }, [][]string{{"log.file", "directory"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.modify(&c)
			got := problems(c.Validate())
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems, want %d: %v", len(got), len(tc.want), got)
			}
			for i, subs := range tc.want {
				for _, s := range subs {
					if !strings.Contains(got[i].Error(), s) {
						t.Errorf("problem %d = %q, want it to contain %q", i, got[i], s)
					}
				}
			}
		})
	}
}
