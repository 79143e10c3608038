package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"gitlab.com/dind-executor/dind-executor/config"
	"gitlab.com/dind-executor/dind-executor/executor/audit"
)

// writeTrail makes a config whose [audit] path holds records.
func writeTrail(t *testing.T, records ...audit.Record) (configPath, trailPath string) {
	t.Helper()
	dir := t.TempDir()
	trailPath = filepath.Join(dir, "audit.jsonl")
	w := audit.NewWriter(trailPath)
	for _, r := range records {
		if err := w.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	configPath = filepath.Join(dir, "config.toml")
	if err := os.WriteFile(configPath, []byte(fmt.Sprintf("[audit]\npath = %q\n", trailPath)), 0o600); err != nil {
		t.Fatal(err)
	}
	return configPath, trailPath
}

func TestAuditCommand(t *testing.T) {
	t0 := time.Now().Add(-3 * time.Hour).UTC().Truncate(time.Second)
	job7 := audit.JobRef{ID: 7, ProjectID: 42, ProjectPath: "g/app", UserLogin: "alice"}
	configPath, trailPath := writeTrail(t,
		audit.Record{Time: t0, Event: audit.EventSandboxCreated, Sandbox: "aaaa", Job: job7,
			Created: &audit.Created{DaemonSecurity: "capabilities", Images: []audit.Image{{Role: "build", Ref: "job:test", ID: "sha256:0123456789abcdef"}}}},
		audit.Record{Time: t0.Add(time.Hour), Event: audit.EventStageFinished, Sandbox: "aaaa", Job: job7,
			Stage: &audit.Stage{Name: "build_script", Container: "build", ExitCode: 0, DurationMS: 2500, OutputBytes: 10}},
		audit.Record{Time: t0.Add(2 * time.Hour), Event: audit.EventSandboxProduced, Sandbox: "aaaa", Job: job7,
			Produced: &audit.Produced{Images: []audit.ProducedImage{{ID: "sha256:feedfacecafe0000", Tags: []string{"localhost:5000/app:1"}, RepoDigests: []string{"localhost:5000/app@sha256:beef"}}}}},
		audit.Record{Time: t0.Add(2 * time.Hour), Event: audit.EventSandboxDestroyed, Sandbox: "bbbb", Job: audit.JobRef{ID: 8, ProjectID: 43, ProjectPath: "g/other"},
			Destroyed: &audit.Destroyed{By: "gc", Reason: "job over", LivedMS: 61_000}},
	)
	// A line torn by a crash is reported, not fatal.
	f, err := os.OpenFile(trailPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"time":"2026-01-01T00:00:00Z","event":"sandb`)
	f.Close()

	cases := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
		notOut   []string
		wantErr  string
	}{
		{"job as a table", []string{"--job", "7"}, 0,
			[]string{"sandbox.created", "daemon capabilities; user alice; images build=job:test (0123456789ab)",
				"build_script in build: exit 0, 2.5s, 10 bytes of output", "image feedfacecafe localhost:5000/app:1 pushed localhost:5000/app@sha256:beef"},
			[]string{"bbbb"}, "1 lines of"},
		{"project by path", []string{"--project", "g/other"}, 0, []string{"by gc (job over): 0 containers, 0 volumes, 0 networks; lived 1m1s"}, []string{"aaaa"}, ""},
		{"since", []string{"--since", "90m"}, 0, []string{"sandbox.produced", "bbbb"}, []string{"sandbox.created", "stage.finished"}, ""},
		{"bad since", []string{"--since", "yesterday"}, 2, nil, nil, `--since "yesterday"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Run(append([]string{"--config", configPath, "audit"}, tc.args...), Streams{Out: &out, Err: &errOut}, func(string) string { return "" })
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d: %s", code, tc.wantCode, errOut.String())
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, n := range tc.notOut {
				if strings.Contains(out.String(), n) {
					t.Errorf("output has %q:\n%s", n, out.String())
				}
			}
			if !strings.Contains(errOut.String(), tc.wantErr) {
				t.Errorf("stderr %q lacks %q", errOut.String(), tc.wantErr)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if code := Run([]string{"--config", configPath, "audit", "--job", "7", "--json"}, Streams{Out: &out, Err: &errOut}, func(string) string { return "" }); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		var records []audit.Record
		if err := json.Unmarshal(out.Bytes(), &records); err != nil {
			t.Fatalf("not a JSON array: %v\n%s", err, out.String())
		}
		if len(records) != 3 || records[2].Produced.Images[0].RepoDigests[0] != "localhost:5000/app@sha256:beef" {
			t.Errorf("records %+v", records)
		}
	})
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	cases := map[string]time.Time{
		"2h":                   now.Add(-2 * time.Hour),
		"0s":                   now,
		"2026-01-31":           time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC),
		"2026-01-31T12:00:00Z": time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC),
	}
	for in, want := range cases {
		got, err := parseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-2h", "soon", "31/01/2026"} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q) accepted", bad)
		}
	}
}

func TestLogger(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name      string
		cfg       config.Log
		env       string
		wantLevel logrus.Level
		toFile    bool
		wantLine  string
	}{
		{"text to stderr", config.Log{Format: "text", Level: "info"}, "", logrus.InfoLevel, false, `level=info msg="sandbox ready" sandbox=s1`},
		{"json to a file", config.Log{Format: "json", Level: "debug", File: filepath.Join(dir, "sub", "executor.log")}, "", logrus.DebugLevel, true, `"level":"info","msg":"sandbox ready","sandbox":"s1"`},
		{"the environment overrides the level", config.Log{Format: "text", Level: "error"}, "info", logrus.InfoLevel, false, "sandbox ready"},
		{"a bad environment level is ignored", config.Log{Format: "text", Level: "warning"}, "chatty", logrus.WarnLevel, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			log, err := newLogger(tc.cfg, &stderr, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if log.GetLevel() != tc.wantLevel {
				t.Errorf("level %s, want %s", log.GetLevel(), tc.wantLevel)
			}
			log.WithField("sandbox", "s1").Info("sandbox ready")
			got := stderr.String()
			if tc.toFile {
				if got != "" {
					t.Errorf("logged to stderr with a file set: %q", got)
				}
				data, err := os.ReadFile(tc.cfg.File)
				if err != nil {
					t.Fatal(err)
				}
				got = string(data)
			}
			if !strings.Contains(got, tc.wantLine) || (tc.wantLine == "" && got != "") {
				t.Errorf("log %q, want %q", got, tc.wantLine)
			}
		})
	}
}
