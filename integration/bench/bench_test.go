package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gitlab.com/dind-executor/dind-executor/config"
	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/executor/tlsca"
	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// The tests cover the bench's own arithmetic, parsing and job scripts; the
// bench itself needs a Docker Engine and runs with `go run ./integration/bench`.

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
	if !math.IsNaN(speedup(nil, summarize([]float64{1}))) || speedup(summarize([]float64{10}), summarize([]float64{2})) != 5 {
		t.Error("speedup is cold ÷ cached, NaN without figures")
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

func TestOptions(t *testing.T) {
	o, err := parseOptions([]string{"-quick"})
	if err != nil || o.runs != 1 || o.concurrency != 2 || o.heavyRuns() != 1 {
		t.Errorf("-quick = %+v, %v; want 1 run and 2 concurrent jobs", o, err)
	}
	if o, _ := parseOptions([]string{"-runs", "7"}); o.heavyRuns() != maxHeavyRuns {
		t.Errorf("heavy rows take %d runs of 7, want %d", o.heavyRuns(), maxHeavyRuns)
	}
	if _, err := parseOptions([]string{"-runs", "0"}); err == nil {
		t.Error("-runs 0 accepted")
	}
	if _, err := parseOptions([]string{"-only", "prepare,nonsense"}); err == nil || !strings.Contains(err.Error(), "nonsense") {
		t.Errorf("unknown section: %v", err)
	}
	o, err = parseOptions([]string{"-only", "stage, runnerimage"})
	if err != nil || !o.wants("stage") || !o.wants("prepare", "runnerimage") || o.wants("prepare", "cleanup") {
		t.Errorf("-only stage,runnerimage selects %v, %v", o.sections, err)
	}
	if o, _ := parseOptions(nil); len(o.sections) != len(allSections) {
		t.Errorf("default sections %v", o.sections)
	}
}

func TestLargestHookRSS(t *testing.T) {
	res := &runner.Result{Execs: []runner.Exec{{Kind: runner.ExecConfig, MaxRSSKB: 9000}, {Kind: runner.ExecPrepare, MaxRSSKB: 15000}, {Kind: runner.ExecCleanup, MaxRSSKB: 12000}}}
	if got := largestHookRSSKB(res); got != 15000 {
		t.Errorf("largest hook RSS %d KiB, want 15000", got)
	}
}

func TestInvocationOwnsOnlyItsObjects(t *testing.T) {
	inv, other := newInvocation(), newInvocation()
	other.tag = inv.tag + 1
	p := inv.newProject("seed")
	if q := inv.newProject("seed"); q.id == p.id || q.path == p.path {
		t.Errorf("two projects share an id or path: %+v %+v", p, q)
	}
	cases := []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{executor.LabelProjectPath: p.path}, true},
		{inv.labels("go-image"), true},
		{other.labels("go-image"), false},
		{map[string]string{executor.LabelProjectPath: other.projectPath("seed-1")}, false},
		{map[string]string{executor.LabelProjectPath: "seed/my-app"}, false},
		{nil, false},
	}
	for _, tc := range cases {
		if got := inv.owns(tc.labels); got != tc.want {
			t.Errorf("owns(%v) = %v, want %v", tc.labels, got, tc.want)
		}
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
		{Section: "7", Name: "concurrent", Unit: "s", Product: summarize([]float64{9})},
		{Section: "1", Key: "prepare", Name: "prepare", Unit: "s", Product: summarize([]float64{1.2, 1.4, 1.3}), Target: "≤ 1.50 s median", Met: boolPtr(true)},
		{Section: "6b", Name: "runner image next job", Unit: "s", Product: summarize([]float64{2}), Baseline: summarize([]float64{40}), BaselineKey: "B6b"},
		{Section: "2", Name: "stage", Unit: "ms", Product: summarize([]float64{60}), Baseline: summarize([]float64{80}), BaselineKey: "B2", Target: "≤ 50 ms", Met: boolPtr(false)},
	}, Profiles: []Profile{{Title: "p", Unit: "%core", Columns: []string{"hook", "cli"}, Parts: []Part{{Name: "dockerd", Values: []float64{30, 20}, N: 1}}}}}
	var buf bytes.Buffer
	rep.writeText(&buf)
	out := buf.String()
	for _, want := range []string{"1.30 s [1.20–1.40]", "NOT MET", "targets: 1 of 2 met", "80.0 ms (B2)", "dockerd  30%", "0.05 (20.0× better)"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if i, j := strings.Index(out, "runner image next job"), strings.Index(out, "concurrent"); i < 0 || j < i {
		t.Errorf("row 6b is not between 6 and 7:\n%s", out)
	}
	if rep.row("prepare") == nil || rep.row("absent") != nil {
		t.Error("row looks rows up by key")
	}
}

// The timings are read from the job's output, never from the echoed
// command line the runner prints before running it.
func TestJobTimesIgnoreTheEchoedCommand(t *testing.T) {
	line := timed("cold", quiet("cold", "docker build -t my-app:bench ."))
	out := "$ " + line + "\nBENCH-TIME cold 812345\n$ next\nBENCH-TIME rebuild 61000\nBENCH-BASE loaded\n"
	res := &runner.Result{Execs: []runner.Exec{{Kind: runner.ExecRun, Stage: runner.StageBuildScript, BuildStage: runner.StageStepScript, Output: out}}}
	got := jobTimes(res)
	if len(got) != 2 || got["cold"] != 0.812345 || got["rebuild"] != 0.061 {
		t.Errorf("parsed %v", got)
	}
	if baseImages(res) != "loaded" {
		t.Errorf("base images %q, want loaded", baseImages(res))
	}
}

// The runner image's job script works in bash: it loads the base images
// only when missing, prints its timings, and stops at a failing build with
// the build's own output.
func TestRunnerImageScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	// A stand-in docker: `image inspect` succeeds when $PRESENT is set,
	// `build` fails when $FAIL is set.
	fake := `docker() { case $1 in
	  image) [ -n "$PRESENT" ] ;;
	  load) echo "Loaded image: x" ;;
	  build) echo "step 1/9"; [ -z "$FAIL" ] ;;
	  run) echo "dind-executor bench" ;;
	esac; }
`
	job := runnerImageJob{goImage: "go:1", runnerImage: "runner:1", archive: "/srv/base.tar"}
	script := "set -eo pipefail\n" + fake + strings.Join(job.script(), "\n") + "\n"
	// The job keeps its command logs in the container's /tmp; here, in the test's dir.
	script = strings.ReplaceAll(script, "/tmp/bench-", dir+"/bench-")
	run := func(env ...string) (string, error) {
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("PATH=/usr/bin:/bin")
	if err != nil || !strings.Contains(out, "BENCH-BASE loaded") || !strings.Contains(out, "BENCH-TIME build ") {
		t.Errorf("cold job: %v\n%s", err, out)
	}
	out, err = run("PATH=/usr/bin:/bin", "PRESENT=1")
	if err != nil || !strings.Contains(out, "BENCH-BASE present") {
		t.Errorf("next job: %v\n%s", err, out)
	}
	out, err = run("PATH=/usr/bin:/bin", "PRESENT=1", "FAIL=1")
	if err == nil || !strings.Contains(out, "step 1/9") || strings.Contains(out, "BENCH-TIME build") {
		t.Errorf("failing build: %v\n%s", err, out)
	}
	for _, want := range []string{"GO_IMAGE=go:1", "RUNNER_IMAGE=runner:1", "docker load -i /srv/base.tar"} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q", want)
		}
	}
}

func TestCertDirTLSWaitsForEveryFile(t *testing.T) {
	b, err := tlsca.New("0123456789abcdef", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"ca.pem": b.CACert, "cert.pem": b.Client.Cert}
	if _, err := certDirTLS(files); err == nil {
		t.Error("accepted a directory without key.pem")
	}
	files["key.pem"] = b.Client.Key
	files["ca.pem"] = b.CACert[:len(b.CACert)/2] // still being written
	if _, err := certDirTLS(files); err == nil {
		t.Error("accepted a half-written ca.pem")
	}
	files["ca.pem"] = b.CACert
	if _, err := certDirTLS(files); err != nil {
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

// Row 9's second config is the product config plus [engine] hosts, merged
// into an [engine] table the config may have, never contradicting one.
func TestWithEngineHosts(t *testing.T) {
	hosts := []string{"unix:///var/run/docker.sock", "unix:///run/docker.sock"}
	base := seedjob.Config(t.TempDir())
	got, err := withEngineHosts(base, hosts)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(got))
	if err != nil || !slices.Equal(cfg.Engine.Hosts, hosts) || cfg.Sandbox.DindImage != seedjob.DaemonImage {
		t.Errorf("merged product config parses to hosts %v, dind image %q, %v:\n%s", cfg.Engine.Hosts, cfg.Sandbox.DindImage, err, got)
	}

	withTable := "[engine]  # the outer Engine\ntls_verify = false\n\n[sandbox]\ndefault_image = \"x\"\n"
	got, err = withEngineHosts(withTable, hosts)
	want := "[engine]  # the outer Engine\n" + `hosts = ["unix:///var/run/docker.sock", "unix:///run/docker.sock"]` + "\ntls_verify = false\n\n[sandbox]\ndefault_image = \"x\"\n"
	if err != nil || got != want {
		t.Errorf("merge into [engine] = %q, %v; want %q", got, err, want)
	}

	for _, refused := range []string{
		"[engine]\nhost = \"unix:///x.sock\"\n",
		"[engine]\nhosts = [\"unix:///x.sock\"]\n[sandbox]\n",
		"engine.host = \"unix:///x.sock\"\n",
		"[sandbox]\n[ engine ]\n  host=\"tcp://b:2376\"\n",
	} {
		if got, err := withEngineHosts(refused, hosts); err == nil {
			t.Errorf("merged into a config naming its Engine:\n%s", got)
		}
	}
	// host under another table, or in a comment, is not the Engine's.
	if _, err := withEngineHosts("[daemon]\nhost = 1\n# [engine] host = 2\n", hosts); err != nil {
		t.Errorf("refused a config without an Engine: %v", err)
	}
}

func TestPairedDelta(t *testing.T) {
	one := []float64{100, 110, math.NaN(), 90}
	several := []float64{120, 125, 300, 95, 500} // the unpaired last one is left out
	d := pairedDelta(one, several)
	if d == nil || d.N != 3 || d.Median != 15 || d.Min != 5 || d.Max != 20 {
		t.Errorf("paired differences %+v, want 3 pairs, median 15 [5–20]", d)
	}
	if pairedDelta([]float64{math.NaN()}, []float64{1}) != nil {
		t.Error("no pair must give no figure")
	}
	if order := [2][2]int{pairOrder(0), pairOrder(1)}; order != [2][2]int{{0, 1}, {1, 0}} {
		t.Errorf("pair order %v: the config going first must alternate", order)
	}
	at := hostsRow(Row{Unit: "ms"}, [2][]float64{{100, 100}, {150, 110}}, [2][]float64{{100, 100}, {150, 110}}, 30)
	if at.Met == nil || !*at.Met || at.Product.Median != 130 || at.Baseline.Median != 100 || !strings.Contains(at.Note, "+30.0 ms median of 2 paired") {
		t.Errorf("+30 ms at a ≤ +30 ms target: met %v, row %+v", at.Met, at)
	}
	over := hostsRow(Row{Unit: "ms"}, [2][]float64{{100, 100}, {150, 112}}, [2][]float64{{100, 100}, {150, 112}}, 30)
	if over.Met == nil || *over.Met {
		t.Errorf("+31 ms at a ≤ +30 ms target: met %v", over.Met)
	}
	if none := hostsRow(Row{Unit: "s"}, [2][]float64{{1}, {2}}, [2][]float64{{1000}, {2000}}, 0); none.Met != nil || none.Target != "" || !strings.Contains(none.Note, "+1000.0 ms") {
		t.Errorf("a row without a limit: %+v", none)
	}
}

// checkOneEngine accepts one socket under several names, and nothing else.
func TestCheckOneEngine(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "run")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(dir, "varrun")); err != nil {
		t.Fatal(err)
	}
	socket := func(name string) string {
		l, err := net.Listen("unix", filepath.Join(real, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return "unix://" + filepath.Join(real, name)
	}
	engine, other := socket("docker.sock"), socket("other.sock")
	alias := "unix://" + filepath.Join(dir, "varrun", "docker.sock")
	if err := checkOneEngine([]string{alias, engine}, engine); err != nil {
		t.Errorf("one socket under two names refused: %v", err)
	}
	plain := filepath.Join(real, "file")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		hosts      []string
		dockerHost string
	}{
		{[]string{alias, other}, engine},
		{[]string{alias, engine}, other},
		{[]string{alias, "tcp://b:2376"}, engine},
		{[]string{alias, engine}, "tcp://b:2376"},
		{[]string{alias, "unix://" + filepath.Join(real, "missing.sock")}, engine},
		{[]string{alias, "unix://" + plain}, engine},
	} {
		if err := checkOneEngine(tc.hosts, tc.dockerHost); err == nil {
			t.Errorf("checkOneEngine(%v, %q) accepted", tc.hosts, tc.dockerHost)
		}
	}
}

func TestLacksSysResource(t *testing.T) {
	for _, tc := range []struct {
		status string
		lacks  bool
	}{
		{"Name:\tsystemd\nCapBnd:\t000001fffeffffff\nCapAmb:\t0000000000000000\n", true}, // bit 24 clear
		{"Name:\tsystemd\nCapBnd:\t000001ffffffffff\n", false},
		{"Name:\tsystemd\n", false},
		{"CapBnd:\tnot hex\n", false},
	} {
		if got := lacksSysResource(tc.status); (got != "") != tc.lacks {
			t.Errorf("lacksSysResource(%q) = %q, want lacking: %v", tc.status, got, tc.lacks)
		}
	}
}
