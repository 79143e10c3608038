package stages

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"gitlab.com/dind-executor/dind-executor/config"
	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/executor/audit"
)

type recordingSink struct {
	records []audit.Record
	err     error
}

func (s *recordingSink) Append(r audit.Record) error {
	if s.err != nil {
		return s.err
	}
	s.records = append(s.records, r)
	return nil
}

func (s *recordingSink) events() []audit.Event {
	var out []audit.Event
	for _, r := range s.records {
		out = append(out, r.Event)
	}
	return out
}

// fakeEngine stands in for the Engine: these tests are about which records
// the hooks write, not about Docker.
type fakeEngine struct {
	prepareErr  error
	exec        executor.ExecResult
	exists      bool
	created     time.Time
	removed     executor.Removed
	produced    executor.Produced
	producedErr error
}

func (f *fakeEngine) Prepare(_ context.Context, s executor.Spec) (*executor.Sandbox, error) {
	if f.prepareErr != nil {
		return nil, f.prepareErr
	}
	return &executor.Sandbox{Identity: s.Identity, Network: s.Identity.Name(executor.RoleNetwork), MTU: 1450,
		CAFingerprint: strings.Repeat("ab", 32), CertsNotAfter: time.Unix(1_800_000_000, 0), ReadyAfter: 1300 * time.Millisecond}, nil
}

func (f *fakeEngine) Exec(context.Context, executor.Identity, executor.Role, io.Reader, io.Writer, io.Writer) (executor.ExecResult, error) {
	return f.exec, nil
}

func (f *fakeEngine) Teardown(context.Context, string) (executor.Removed, error) {
	return f.removed, nil
}
func (f *fakeEngine) Close() error { return nil }

func (f *fakeEngine) Describe(_ context.Context, id executor.Identity) (executor.Description, error) {
	return executor.Description{
		Network: id.Name(executor.RoleNetwork), MTU: 1450,
		Containers: []executor.ContainerRights{
			{Role: executor.RoleDaemon, Name: id.Name(executor.RoleDaemon), ImageRef: "dind:test", ImageID: "sha256:d", Privileged: true},
			{Role: executor.RoleBuild, Name: id.Name(executor.RoleBuild), ImageRef: "job:test", ImageID: "sha256:j",
				RepoDigests: []string{"job@sha256:1"}, Limits: executor.Limits{NanoCPUs: 1e9, MemoryBytes: 1 << 30, Pids: 100}},
		},
		CA: executor.CertInfo{Fingerprint: "cafe", NotBefore: time.Unix(1_700_000_000, 0), NotAfter: time.Unix(1_700_003_600, 0)},
	}, nil
}

func (f *fakeEngine) Produced(context.Context, string) (executor.Produced, error) {
	return f.produced, f.producedErr
}

func (f *fakeEngine) SandboxByID(_ context.Context, id string) (executor.SandboxInfo, bool, error) {
	return executor.SandboxInfo{Identity: executor.Identity{SandboxID: id, JobID: 4711}, Created: f.created}, f.exists, nil
}

// Values a job response carries that must never reach the trail.
var secrets = []string{"s3cr3t-variable-value", "registry-password-value", "job-token-value"}

func auditHooks(t *testing.T, engine *fakeEngine, sink *recordingSink) *Hooks {
	t.Helper()
	dir := t.TempDir()
	response := `{"id":4711,"token":"job-token-value",
		"job_info":{"name":"build","project_id":42,"project_full_path":"g/app","pipeline_id":900},
		"runner_info":{"timeout":600},
		"variables":[{"key":"GITLAB_USER_LOGIN","value":"alice","public":true},{"key":"API_KEY","value":"s3cr3t-variable-value","masked":true},
			{"key":"CI_JOB_TOKEN","value":"job-token-value","masked":true}],
		"credentials":[{"type":"registry","url":"registry.example.com","username":"u","password":"registry-password-value"}]}`
	path := filepath.Join(dir, "response.json")
	if err := os.WriteFile(path, []byte(response), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_100, 0)
	return &Hooks{
		Config: config.Default(), Hostname: "runner-1", Version: "test",
		Env:    RunnerEnv{JobResponseFile: path, TempDir: dir, RunnerVersion: "19.4.0"},
		Stdout: io.Discard, Stderr: io.Discard, Log: logrus.New(),
		Connect: func() (Engine, error) { return engine, nil },
		Audit:   sink, Now: func() time.Time { return now },
	}
}

func TestHooksWriteTheTrail(t *testing.T) {
	engine := &fakeEngine{
		exec: executor.ExecResult{ExitCode: 3, Duration: 1500 * time.Millisecond, OutputBytes: 42}, exists: true, created: time.Unix(1_700_000_000, 0),
		removed: executor.Removed{Containers: []string{"c"}, Volumes: []string{"v"}, Networks: []string{"n"}},
		produced: executor.Produced{
			Images:     []executor.ProducedImage{{ID: "sha256:img", Tags: []string{"localhost:5000/app:1"}, RepoDigests: []string{"localhost:5000/app@sha256:pushed"}}},
			Containers: []executor.ProducedContainer{{ID: "c1", Image: "app", ExitCode: 0, State: "exited"}},
		},
	}
	sink := &recordingSink{}
	h := auditHooks(t, engine, sink)
	if err := h.PrepareHook(context.Background()); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(script, []byte("echo $API_KEY\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	var build *BuildFailure
	if err := h.RunHook(context.Background(), script, "build_script"); !errors.As(err, &build) {
		t.Fatalf("run hook: %v, want a build failure", err)
	}
	if err := h.CleanupHook(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []audit.Event{audit.EventSandboxCreated, audit.EventStageFinished, audit.EventSandboxProduced, audit.EventSandboxDestroyed}
	if got := sink.events(); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}

	created := sink.records[0]
	sandboxID, _ := h.sandboxID()
	if created.Sandbox != sandboxID || created.Host != "runner-1" || !created.Time.Equal(time.Unix(1_700_000_100, 0)) {
		t.Errorf("created record header %+v", created)
	}
	wantJob := audit.JobRef{ID: 4711, Name: "build", ProjectID: 42, ProjectPath: "g/app", PipelineID: 900, UserLogin: "alice"}
	if created.Job != wantJob {
		t.Errorf("job %+v, want %+v", created.Job, wantJob)
	}
	c := created.Created
	if c.RunnerVersion != "19.4.0" || c.DaemonSecurity != "privileged" || c.MTU != 1450 || c.ReadyMS != 1300 ||
		c.CA.Fingerprint != "cafe" || len(c.Images) != 2 || c.Images[1].RepoDigests[0] != "job@sha256:1" || !c.Containers[0].Privileged ||
		c.Containers[1].Limits.Pids != 100 {
		t.Errorf("created payload %+v", c)
	}

	stage := sink.records[1].Stage
	if *stage != (audit.Stage{Name: "build_script", Container: "build", ExitCode: 3, DurationMS: 1500, OutputBytes: 42}) || sink.records[1].Job.ID != 4711 {
		t.Errorf("stage record %+v %+v", sink.records[1].Job, stage)
	}
	produced := sink.records[2].Produced
	if len(produced.Images) != 1 || produced.Images[0].RepoDigests[0] != "localhost:5000/app@sha256:pushed" || len(produced.Containers) != 1 {
		t.Errorf("produced %+v", produced)
	}
	destroyed := sink.records[3].Destroyed
	if destroyed.By != "cleanup" || destroyed.LivedMS != 100_000 || len(destroyed.Containers) != 1 {
		t.Errorf("destroyed %+v", destroyed)
	}

	all, err := json.Marshal(sink.records)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if bytes.Contains(all, []byte(s)) {
			t.Errorf("the trail holds the secret %q: %s", s, all)
		}
	}
}

func TestTrailOnFailures(t *testing.T) {
	cases := []struct {
		name       string
		engine     fakeEngine
		sinkErr    error
		hook       func(*Hooks) error
		wantEvents []audit.Event
		wantErr    string
		wantRecErr string
	}{
		{"prepare failed", fakeEngine{prepareErr: errors.New("image missing")},
			nil, func(h *Hooks) error { return h.PrepareHook(context.Background()) },
			[]audit.Event{audit.EventPrepareFailed}, "image missing", "image missing"},
		{"a job does not run unaudited", fakeEngine{},
			errors.New("disk full"), func(h *Hooks) error { return h.PrepareHook(context.Background()) },
			nil, "write audit trail: disk full", ""},
		{"cleanup of a sandbox that is gone records nothing", fakeEngine{exists: false},
			nil, func(h *Hooks) error { return h.CleanupHook(context.Background()) },
			nil, "", ""},
		{"daemon unreachable at cleanup: said in the record", fakeEngine{exists: true, producedErr: errors.New("daemon exited"), removed: executor.Removed{Networks: []string{"n"}}},
			nil, func(h *Hooks) error { return h.CleanupHook(context.Background()) },
			[]audit.Event{audit.EventSandboxProduced, audit.EventSandboxDestroyed}, "", "asking the job's daemon: daemon exited"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sink := &recordingSink{err: tc.sinkErr}
			h := auditHooks(t, &tc.engine, sink)
			err := tc.hook(h)
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if got := sink.events(); !slices.Equal(got, tc.wantEvents) {
				t.Fatalf("events %v, want %v", got, tc.wantEvents)
			}
			if tc.wantRecErr != "" && !strings.Contains(sink.records[0].Error, tc.wantRecErr) {
				t.Errorf("record error %q, want %q", sink.records[0].Error, tc.wantRecErr)
			}
		})
	}
}
