package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/executor/audit"
	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/stages"
)

// withAudit adds an [audit] table pointing at a trail of the test's own.
func withAudit(t *testing.T, toml string) (string, string) {
	t.Helper()
	trail := filepath.Join(t.TempDir(), "audit", "audit.jsonl")
	return toml + fmt.Sprintf("\n[audit]\npath = %q\n", trail), trail
}

// operator runs one operator command (ps, audit, gc) of the built binary.
func operator(t *testing.T, configPath string, args ...string) hookRun {
	t.Helper()
	return runBinary(t, env.binary, append([]string{"--config", configPath}, args...)...)
}

// runBinary runs a dind-executor (or a wrapper of it) outside any runner.
func runBinary(t *testing.T, binary string, args ...string) hookRun {
	t.Helper()
	return runCommand(t, exec.Command(binary, args...))
}

// runCommand runs cmd and returns its exit code and output.
func runCommand(t *testing.T, cmd *exec.Cmd) hookRun {
	t.Helper()
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return hookRun{code, out.String(), errOut.String()}
}

// auditJSON is `dind-executor audit --json` with args, decoded.
func auditJSON(t *testing.T, configPath string, args ...string) []audit.Record {
	t.Helper()
	res := operator(t, configPath, append([]string{"audit", "--json"}, args...)...)
	if res.exitCode != 0 {
		t.Fatalf("audit exit %d: %s", res.exitCode, res.stderr)
	}
	var records []audit.Record
	if err := json.Unmarshal([]byte(res.stdout), &records); err != nil {
		t.Fatalf("audit --json output is not a JSON array: %v\n%s", err, res.stdout)
	}
	return records
}

func eventsOf(records []audit.Record) []string {
	var out []string
	for _, r := range records {
		if len(out) == 0 || out[len(out)-1] != string(r.Event) {
			out = append(out, string(r.Event))
		}
	}
	return out
}

func recordOf(t *testing.T, records []audit.Record, event audit.Event) audit.Record {
	t.Helper()
	for _, r := range records {
		if r.Event == event {
			return r
		}
	}
	t.Fatalf("no %s record in %v", event, eventsOf(records))
	return audit.Record{}
}

// testRegistryBinary builds integration/testregistry as a static binary,
// so it can run from a FROM scratch image inside a sandbox.
func testRegistryBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "testregistry"), "./testregistry")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the test registry: %v\n%s", err, out)
	}
	return dir
}

// A job builds the seed's multi-stage image and pushes it to a registry
// running on its own daemon: the trail says who ran it, with which images
// and rights, each stage, the built image's id, tag and pushed digest, the
// containers it ran, and what cleanup removed; it holds no secret.
func TestAuditTrailRecordsWhatAJobBuiltAndPushed(t *testing.T) {
	t.Parallel()
	registryDir := testRegistryBinary(t)
	toml, trail := withAudit(t, strings.Replace(seedConfig(), `volumes = ["`, `volumes = ["`+registryDir+`:/srv/registry:ro", "`, 1))
	const secret = "s3cr3t-masked-value-4f1d"
	const token = "glcbt-job-token-9a8b7c"

	job := simpleJob(
		`mkdir -p /tmp/reg && cp /srv/registry/testregistry /tmp/reg/ && printf 'FROM scratch\nCOPY testregistry /registry\nENTRYPOINT ["/registry"]\n' > /tmp/reg/Dockerfile`,
		"docker build -q -t registry.local/testregistry:1 /tmp/reg",
		"docker run -d --name registry -p 5000:5000 registry.local/testregistry:1",
		"cp /bin/busybox .",
		"docker build -t localhost:5000/my-app:$CI_COMMIT_SHORT_SHA .",
		"for i in $(seq 1 20); do docker push localhost:5000/my-app:$CI_COMMIT_SHORT_SHA && break; sleep 0.5; done",
		`echo "pushed digest $(docker image inspect --format '{{index .RepoDigests 0}}' localhost:5000/my-app:$CI_COMMIT_SHORT_SHA)"`,
		`echo "built image $(docker image inspect --format '{{.Id}}' localhost:5000/my-app:$CI_COMMIT_SHORT_SHA)"`,
		"docker run --name hello localhost:5000/my-app:$CI_COMMIT_SHORT_SHA",
		`test -n "$MY_SECRET"`,
	)
	job.Token = token
	job.Variables = append(job.Variables,
		runner.Var("GITLAB_USER_LOGIN", "alice"),
		runner.Variable{Key: "MY_SECRET", Value: secret, Masked: true})
	e := newEmulator(t, toml)
	res := runJob(t, e, job)
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	log := runner.PlainText(res.Log)
	digest := regexp.MustCompile(`pushed digest (localhost:5000/my-app@sha256:[0-9a-f]{64})`).FindStringSubmatch(log)
	built := regexp.MustCompile(`built image (sha256:[0-9a-f]{64})`).FindStringSubmatch(log)
	if digest == nil || built == nil {
		t.Fatalf("the job did not print its pushed digest and image id")
	}

	configPath := e.Args[1]
	records := auditJSON(t, configPath, "--job", strconv.FormatInt(job.ID, 10))
	if got, want := strings.Join(eventsOf(records), " "), "sandbox.created stage.finished sandbox.produced sandbox.destroyed"; got != want {
		t.Fatalf("events %q, want %q", got, want)
	}

	created := recordOf(t, records, audit.EventSandboxCreated)
	wantJob := audit.JobRef{ID: job.ID, Name: job.Name, ProjectID: job.ProjectID, ProjectPath: job.ProjectPath, PipelineID: job.PipelineID, UserLogin: "alice"}
	if created.Job != wantJob {
		t.Errorf("job %+v, want %+v", created.Job, wantJob)
	}
	c := created.Created
	if c.DaemonSecurity != "capabilities" || c.RunnerVersion != "19.4.0" || c.MTU < 576 || c.Network == "" || c.ReadyMS <= 0 {
		t.Errorf("created: %+v", c)
	}
	if len(c.CA.Fingerprint) != 64 || !c.CA.NotBefore.Before(c.CA.NotAfter) || c.CA.NotAfter.Sub(c.CA.NotBefore) < time.Duration(job.Timeout)*time.Second {
		t.Errorf("CA %+v: want a SHA-256 fingerprint and a validity covering the job's timeout", c.CA)
	}
	roles := map[string]audit.Container{}
	for _, ct := range c.Containers {
		roles[ct.Role] = ct
	}
	if !roles["daemon"].Privileged && len(roles["daemon"].CapAdd) == 0 {
		t.Errorf("the daemon's rights are not recorded: %+v", roles["daemon"])
	}
	for _, role := range []string{"build", "helper"} {
		if ct, ok := roles[role]; !ok || ct.Privileged || len(ct.CapAdd) > 0 {
			t.Errorf("%s container rights %+v, want recorded and unprivileged", role, ct)
		}
	}
	for _, img := range c.Images {
		if !strings.HasPrefix(img.ID, "sha256:") || img.Ref == "" {
			t.Errorf("image %+v: want a reference and a resolved id", img)
		}
	}

	stagesRun := map[string]bool{}
	for _, r := range records {
		if r.Stage != nil {
			stagesRun[r.Stage.Name] = true
			if r.Stage.Name == "build_script" && (r.Stage.ExitCode != 0 || r.Stage.OutputBytes == 0 || r.Stage.DurationMS <= 0 || r.Stage.Container != "build") {
				t.Errorf("build_script record %+v", r.Stage)
			}
		}
	}
	for _, s := range []string{"prepare_script", "get_sources", "build_script", "after_script"} {
		if !stagesRun[s] {
			t.Errorf("no stage record for %s: %v", s, stagesRun)
		}
	}

	produced := recordOf(t, records, audit.EventSandboxProduced)
	if produced.Error != "" {
		t.Fatalf("produced: %s", produced.Error)
	}
	var pushed bool
	for _, img := range produced.Produced.Images {
		if img.ID == built[1] {
			pushed = strings.Contains(strings.Join(img.RepoDigests, " "), digest[1])
		}
	}
	if !pushed {
		t.Errorf("produced images %+v lack %s pushed as %s", produced.Produced.Images, built[1], digest[1])
	}
	ran := map[string]audit.ProducedContainer{}
	for _, ct := range produced.Produced.Containers {
		ran[ct.Name] = ct
	}
	if r := ran["registry"]; r.State != "running" || r.Image != "registry.local/testregistry:1" {
		t.Errorf("registry container %+v", r)
	}
	if h := ran["hello"]; h.State != "exited" || h.ExitCode != 0 || !strings.HasPrefix(h.Image, "localhost:5000/my-app:") {
		t.Errorf("hello container %+v", h)
	}

	destroyed := recordOf(t, records, audit.EventSandboxDestroyed)
	if d := destroyed.Destroyed; d.By != "cleanup" || len(d.Containers) < 3 || len(d.Networks) != 1 || d.LivedMS <= 0 {
		t.Errorf("destroyed %+v", d)
	}

	table := operator(t, configPath, "audit", "--job", strconv.FormatInt(job.ID, 10))
	for _, want := range []string{digest[1], "user alice", "daemon capabilities", "by cleanup"} {
		if !strings.Contains(table.stdout, want) {
			t.Errorf("audit --job table lacks %q:\n%s", want, table.stdout)
		}
	}
	data, err := os.ReadFile(trail)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{secret, token} {
		if strings.Contains(string(data), s) {
			t.Errorf("the audit trail holds the secret %q", s)
		}
	}
	assertJobLeftNothing(t, job.ID)
}

// startPrepare starts the prepare hook as the runner would, for a job
// response in its own runner temp dir, and returns its sandbox id.
func startPrepare(t *testing.T, configPath string, jobID int64) (*exec.Cmd, string, string) {
	t.Helper()
	tmp, err := os.MkdirTemp("", "custom-executor")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	response := fmt.Sprintf(`{"id":%d,"job_info":{"name":"killed","project_id":4242,"project_full_path":"ops/gc","pipeline_id":77},"runner_info":{"timeout":600}}`, jobID)
	path := filepath.Join(tmp, "response.json")
	if err := os.WriteFile(path, []byte(response), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(env.binary, "--config", configPath, "prepare")
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), runnerEnv(tmp, true)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return cmd, string(stages.SandboxID(hostname, path)), tmp
}

// waitForContainer polls until the named container exists.
func waitForContainer(t *testing.T, api *client.Client, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := api.ContainerInspect(context.Background(), name, client.ContainerInspectOptions{}); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("container %s did not appear within %s", name, timeout)
}

// psEntries is `dind-executor ps --json`, by sandbox id.
func psEntries(t *testing.T, configPath string) map[string]map[string]any {
	t.Helper()
	res := operator(t, configPath, "ps", "--json")
	if res.exitCode != 0 {
		t.Fatalf("ps exit %d: %s", res.exitCode, res.stderr)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &list); err != nil {
		t.Fatalf("ps --json: %v\n%s", err, res.stdout)
	}
	out := map[string]map[string]any{}
	for _, e := range list {
		out[e["sandbox"].(string)] = e
	}
	return out
}

// A prepare hook killed with SIGKILL half way leaves a partial sandbox:
// ps shows it, gc keeps it while the runner's temp dir says the job may
// still run, lists it with --dry-run once that dir is gone, then removes
// every object carrying the job's labels and records it in the trail.
func TestGCRemovesWhatAKilledPrepareLeft(t *testing.T) {
	t.Parallel()
	toml, _ := withAudit(t, seedConfig())
	configPath := writeConfig(t, toml)
	jobID := newJobID()
	prepare, sandboxID, tmp := startPrepare(t, configPath, jobID)
	t.Cleanup(func() {
		if _, err := connect(t).Teardown(context.Background(), executor.SandboxID(sandboxID), executor.TeardownOptions{By: "test"}); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	id := executor.SandboxID(sandboxID)
	waitForContainer(t, dockerAPI(t), id.Name(executor.RoleDaemon), 60*time.Second)
	if err := syscall.Kill(-prepare.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = prepare.Wait()

	entry, ok := psEntries(t, configPath)[sandboxID]
	if !ok {
		t.Fatalf("ps does not list the half-made sandbox %s", sandboxID)
	}
	if entry["job_id"].(float64) != float64(jobID) || entry["project_path"] != "ops/gc" || entry["pipeline_id"].(float64) != 77 {
		t.Errorf("ps entry %v", entry)
	}
	table := operator(t, configPath, "ps")
	if !strings.Contains(table.stdout, sandboxID) || !strings.Contains(table.stdout, "daemon=") {
		t.Errorf("ps table lacks the sandbox and its daemon's state:\n%s", table.stdout)
	}

	steps := []struct {
		name       string
		before     func()
		args       []string
		wantAction string
		wantLeft   bool
	}{
		{"runner temp dir still there: kept", nil, []string{"gc", "--sandbox", sandboxID}, "keep", true},
		{"every sandbox, dry run: nothing removed", nil, []string{"gc", "--dry-run"}, "keep", true},
		{"temp dir gone, dry run: listed", func() { os.RemoveAll(tmp) }, []string{"gc", "--dry-run", "--sandbox", sandboxID}, "would remove", true},
		{"temp dir gone: removed", nil, []string{"gc", "--sandbox", sandboxID}, "removed", false},
		{"a second gc finds nothing", nil, []string{"gc", "--sandbox", sandboxID}, "", false},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		res := operator(t, configPath, s.args...)
		if res.exitCode != 0 {
			t.Fatalf("%s: gc exit %d: %s", s.name, res.exitCode, res.stderr)
		}
		line := ""
		for _, l := range strings.Split(res.stdout, "\n") {
			if strings.Contains(l, sandboxID) {
				line = l
			}
		}
		if s.wantAction == "" && line != "" || s.wantAction != "" && !strings.HasPrefix(line, s.wantAction+" ") {
			t.Fatalf("%s: gc said %q, want %q\n%s", s.name, line, s.wantAction, res.stdout)
		}
		_, exists := psEntries(t, configPath)[sandboxID]
		if exists != s.wantLeft {
			t.Fatalf("%s: sandbox exists=%v, want %v", s.name, exists, s.wantLeft)
		}
	}
	assertNothingLeft(t, executor.LabelSandbox, sandboxID)
	assertJobLeftNothing(t, jobID)

	destroyed := recordOf(t, auditJSON(t, configPath, "--job", strconv.FormatInt(jobID, 10)), audit.EventSandboxDestroyed)
	if d := destroyed.Destroyed; d.By != "gc" || !strings.Contains(d.Reason, "job over") || len(d.Networks) != 1 || destroyed.Job.ProjectPath != "ops/gc" {
		t.Errorf("gc's trail record %+v job %+v", d, destroyed.Job)
	}
}
