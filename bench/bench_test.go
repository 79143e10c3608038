package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"math"
	"strings"
	"testing"
	"time"

	"gitlab.com/dind-executor/dind-executor/executor/tlsca"
)

// The tests cover the bench's own arithmetic and parsing; the bench itself
// needs a Docker Engine and runs with `go run ./bench`.

func TestSummarize(t *testing.T) {
	cases := []struct {
		in               []float64
		median, min, max float64
	}{
		{[]float64{3}, 3, 3, 3},
		{[]float64{5, 1, 3}, 3, 1, 5},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
	}
	for _, tc := range cases {
		s := summarize(tc.in)
		if s.Median != tc.median || s.Min != tc.min || s.Max != tc.max || s.N != len(tc.in) {
			t.Errorf("summarize(%v) = %+v, want median %v min %v max %v", tc.in, s, tc.median, tc.min, tc.max)
		}
	}
	if summarize(nil) != nil {
		t.Error("no samples must give no figure, not zeros")
	}
	if !math.IsNaN(medianOf(nil)) {
		t.Error("medianOf(nil) must be NaN")
	}
}

func TestMilestonesProfile(t *testing.T) {
	start := time.Unix(1000, 0)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	m := newMilestones("a", "b", "c")
	m.add(start, map[string]time.Time{"a": at(0), "b": at(100), "c": at(300)})
	m.add(start, map[string]time.Time{"a": at(0), "b": at(200), "c": at(400)})
	m.add(start, map[string]time.Time{"a": at(0), "c": at(500)}) // b unseen
	p := m.profile("t", "", "")
	want := []Step{{"a", 0, 0, 3}, {"b", 150, 150, 2}, {"c", 400, 200, 3}}
	for i, w := range want {
		if got := p.Steps[i]; got != w {
			t.Errorf("step %d = %+v, want %+v", i, got, w)
		}
	}
	if p.Total != 400 {
		t.Errorf("total %v, want 400", p.Total)
	}
}

func TestHookName(t *testing.T) {
	cases := map[string][]string{
		"prepare":          {"--config", "c.toml", "prepare"},
		"run:build_script": {"--config", "c.toml", "run", "/tmp/x/script", "build_script"},
		"cleanup":          {"cleanup"},
		"unknown":          {"--config", "c.toml"},
	}
	for want, args := range cases {
		if got := hookName(args); got != want {
			t.Errorf("hookName(%v) = %q, want %q", args, got, want)
		}
	}
}

func TestOptions(t *testing.T) {
	o, err := parseOptions([]string{"-quick"})
	if err != nil || o.runs != 1 || o.concurrency != 2 {
		t.Errorf("-quick = %+v, %v; want 1 run and 2 concurrent jobs", o, err)
	}
	if _, err := parseOptions([]string{"-runs", "0"}); err == nil {
		t.Error("-runs 0 accepted")
	}
	if _, err := selectSections("prepare,nonsense"); err == nil || !strings.Contains(err.Error(), "nonsense") {
		t.Errorf("unknown section: %v", err)
	}
	sel, err := selectSections("")
	if err != nil || len(sel) != len(allSections) {
		t.Errorf("default sections %v, %v", sel, err)
	}
}

func TestRatioText(t *testing.T) {
	faster := Row{Product: &Stat{Median: 1}, Baseline: &Stat{Median: 4}}
	if got := faster.ratioText(); got != "0.25 (4.0× better)" {
		t.Errorf("time ratio %q", got)
	}
	rate := Row{Product: &Stat{Median: 100}, Baseline: &Stat{Median: 200}, HigherIsBetter: true}
	if got := rate.ratioText(); got != "0.50 (2.0× worse)" {
		t.Errorf("rate ratio %q", got)
	}
	ref := 5.2
	quoted := Row{Product: &Stat{Median: 2.6}, Reference: &ref}
	if r, ok := quoted.Ratio(); !ok || r != 0.5 {
		t.Errorf("ratio to a quoted reference = %v, %v", r, ok)
	}
}

func TestReportText(t *testing.T) {
	rep := &Report{Runs: 5, Rows: []Row{
		{Section: "1", Name: "prepare", Unit: "s", Product: summarize([]float64{1.2, 1.4, 1.3}), Target: "≤ 1.50 s median", Met: boolPtr(true)},
		{Section: "2", Name: "stage", Unit: "ms", Product: summarize([]float64{60}), Baseline: summarize([]float64{80}), BaselineKey: "B2", Target: "≤ 50 ms", Met: boolPtr(false)},
	}, Profiles: []Profile{{Title: "p", Unit: "%core", Columns: []string{"hook", "cli"}, Parts: []Part{{Name: "dockerd", Values: []float64{30, 20}, N: 1}}}}}
	var buf bytes.Buffer
	rep.writeText(&buf)
	out := buf.String()
	for _, want := range []string{"1.30 s [1.20–1.40]", "NOT MET", "targets: 1 of 2 met", "80.0 ms (B2)", "dockerd  30%"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestBuildTimingsIgnoreTheEchoedCommand(t *testing.T) {
	out := "$ t0=$(date +%s%N); docker build -t my-app:bench . >/dev/null; echo \"BENCH-BUILD cold $(( ($(date +%s%N) - t0) / 1000 ))\"\n" +
		"BENCH-BUILD cold 812345\n$ next\nBENCH-BUILD rebuild 61000\n"
	got := buildResult.FindAllStringSubmatch(out, -1)
	if len(got) != 2 || got[0][1] != "cold" || got[0][2] != "812345" || got[1][1] != "rebuild" {
		t.Errorf("parsed %q", got)
	}
}

func TestClientTLSWaitsForEveryFile(t *testing.T) {
	b, err := tlsca.New("0123456789abcdef", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"ca.pem": b.CACert, "cert.pem": b.Client.Cert}
	if _, err := clientTLS(files); err == nil {
		t.Error("accepted a directory without key.pem")
	}
	files["key.pem"] = b.Client.Key
	files["ca.pem"] = b.CACert[:len(b.CACert)/2] // still being written
	if _, err := clientTLS(files); err == nil {
		t.Error("accepted a half-written ca.pem")
	}
	files["ca.pem"] = b.CACert
	if _, err := clientTLS(files); err != nil {
		t.Errorf("complete client certs refused: %v", err)
	}
}

// BenchmarkJobCertificates is what prepare spends on the job's CA, server
// and client certificates (ECDSA P-256, in memory).
func BenchmarkJobCertificates(b *testing.B) {
	for b.Loop() {
		if _, err := tlsca.New("0123456789abcdef", time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRSA4096Key is one of the three keys the docker:dind entrypoint
// generates at every start (with openssl; Go's generator is comparable).
// Slow: run with -benchtime 3x.
func BenchmarkRSA4096Key(b *testing.B) {
	for b.Loop() {
		if _, err := rsa.GenerateKey(rand.Reader, 4096); err != nil {
			b.Fatal(err)
		}
	}
}
