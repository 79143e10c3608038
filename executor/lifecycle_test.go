package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

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

// fakeMechanics stands in for the Docker work: these tests are about which
// records the Engine writes, not about Docker. Calls it does not expect
// panic (the embedded interface is nil).
type fakeMechanics struct {
	mechanics
	prepareErr  error
	execResult  ExecResult
	labels      Identity // what the containers' labels say
	exists      bool
	created     time.Time
	removed     Removed
	holds       Produced
	producedErr error
}

func (f *fakeMechanics) ping(context.Context) error { return nil }

func (f *fakeMechanics) prepare(_ context.Context, p plan) (*Sandbox, error) {
	if f.prepareErr != nil {
		return nil, f.prepareErr
	}
	return &Sandbox{Identity: p.Identity, Network: p.Identity.Name(RoleNetwork), MTU: 1450, ReadyAfter: 1300 * time.Millisecond,
		CA: CertInfo{Fingerprint: "cafe", NotBefore: time.Unix(1_700_000_000, 0), NotAfter: time.Unix(1_700_003_600, 0)}}, nil
}

func (f *fakeMechanics) describe(_ context.Context, id SandboxID) (Description, error) {
	return Description{
		Network: id.Name(RoleNetwork), MTU: 1450,
		Containers: []ContainerRights{
			{Role: RoleDaemon, Name: id.Name(RoleDaemon), ImageRef: "dind:test", ImageID: "sha256:d", Privileged: true},
			{Role: RoleBuild, Name: id.Name(RoleBuild), ImageRef: "job:test", ImageID: "sha256:j",
				RepoDigests: []string{"job@sha256:1"}, Limits: Limits{NanoCPUs: 1e9, MemoryBytes: 1 << 30, Pids: 100}},
		},
	}, nil
}

func (f *fakeMechanics) exec(context.Context, SandboxID, ExecOptions) (ExecResult, error) {
	return f.execResult, nil
}

func (f *fakeMechanics) containerIdentity(context.Context, SandboxID, Role) (Identity, error) {
	return f.labels, nil
}

func (f *fakeMechanics) explainExecFailure(SandboxID, Role, int) string { return "" }

func (f *fakeMechanics) sandboxByID(_ context.Context, id SandboxID) (SandboxInfo, bool, error) {
	ident := f.labels
	ident.SandboxID = id
	return SandboxInfo{Identity: ident, Created: f.created}, f.exists, nil
}

func (f *fakeMechanics) produced(context.Context, SandboxID) (Produced, error) {
	return f.holds, f.producedErr
}

func (f *fakeMechanics) teardown(_ context.Context, _ SandboxID, ask context.Context) (teardownResult, error) {
	res := teardownResult{Removed: f.removed}
	if ask != nil {
		res.asked = true
		res.produced, res.producedErr = f.holds, f.producedErr
	}
	return res, nil
}

// Values a job carries that must never reach the trail.
var secrets = []string{"s3cr3t-variable-value", "registry-password-value", "job-token-value"}

const testSandbox SandboxID = "0123456789abcdef"

var testJob = Identity{SandboxID: testSandbox, JobID: 4711, JobName: "build", ProjectID: 42, ProjectPath: "g/app", PipelineID: 900, UserLogin: "alice"}

func auditedEngine(m *fakeMechanics, sink *recordingSink) *Engine {
	now := time.Unix(1_700_000_100, 0)
	return newEngine(m, Options{
		Settings: Settings{Daemon: DaemonSpec{Security: SecurityPrivileged}},
		Audit:    sink, RunnerHost: "runner-1", Version: "test", Log: logrus.New(),
		Now: func() time.Time { return now },
	})
}

func auditedSpec() Spec {
	login := &RegistryAuth{Server: "registry.example.com", Username: "u", Password: "registry-password-value"}
	return Spec{
		Identity:      testJob,
		BuildImage:    ImageRef{Name: "job:test", Auth: login},
		DaemonAuth:    login,
		Services:      []Service{{Image: ImageRef{Name: "postgres:15"}, Env: []string{"API_KEY=s3cr3t-variable-value", "CI_JOB_TOKEN=job-token-value"}}},
		RunnerVersion: "19.4.0",
	}
}

func TestEngineWritesTheTrail(t *testing.T) {
	m := &fakeMechanics{
		execResult: ExecResult{ExitCode: 3, Duration: 1500 * time.Millisecond, OutputBytes: 42}, labels: testJob, exists: true, created: time.Unix(1_700_000_000, 0),
		removed: Removed{Containers: []string{"c"}, Volumes: []string{"v"}, Networks: []string{"n"}},
		holds: Produced{
			Images:     []ProducedImage{{ID: "sha256:img", Tags: []string{"localhost:5000/app:1"}, RepoDigests: []string{"localhost:5000/app@sha256:pushed"}}},
			Containers: []ProducedContainer{{ID: "c1", Image: "app", ExitCode: 0, State: "exited"}},
		},
	}
	sink := &recordingSink{}
	e := auditedEngine(m, sink)
	ctx := context.Background()
	if _, err := e.Prepare(ctx, auditedSpec()); err != nil {
		t.Fatal(err)
	}
	script := strings.NewReader("echo s3cr3t-variable-value\n")
	if res, err := e.Exec(ctx, testSandbox, ExecOptions{Stage: "build_script", Role: RoleBuild, Script: script}); err != nil || res.ExitCode != 3 {
		t.Fatalf("exec: %+v, %v", res, err)
	}
	if _, err := e.Teardown(ctx, testSandbox, TeardownOptions{By: "cleanup"}); err != nil {
		t.Fatal(err)
	}
	want := []audit.Event{audit.EventSandboxCreated, audit.EventStageFinished, audit.EventSandboxProduced, audit.EventSandboxDestroyed}
	if got := sink.events(); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}

	created := sink.records[0]
	if created.Sandbox != string(testSandbox) || created.Host != "runner-1" || !created.Time.Equal(time.Unix(1_700_000_100, 0)) {
		t.Errorf("created record header %+v", created)
	}
	wantJob := audit.JobRef{ID: 4711, Name: "build", ProjectID: 42, ProjectPath: "g/app", PipelineID: 900, UserLogin: "alice"}
	for i, r := range sink.records {
		if r.Job != wantJob {
			t.Errorf("record %d (%s): job %+v, want %+v", i, r.Event, r.Job, wantJob)
		}
	}
	c := created.Created
	if c.RunnerVersion != "19.4.0" || c.ExecutorVersion != "test" || c.DaemonSecurity != "privileged" || c.MTU != 1450 || c.ReadyMS != 1300 ||
		c.CA.Fingerprint != "cafe" || len(c.Images) != 2 || c.Images[1].RepoDigests[0] != "job@sha256:1" || !c.Containers[0].Privileged ||
		c.Containers[1].Limits.Pids != 100 {
		t.Errorf("created payload %+v", c)
	}

	stage := sink.records[1].Stage
	if *stage != (audit.Stage{Name: "build_script", Container: "build", ExitCode: 3, DurationMS: 1500, OutputBytes: 42}) {
		t.Errorf("stage record %+v", stage)
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
	prepare := func(e *Engine) error { _, err := e.Prepare(context.Background(), auditedSpec()); return err }
	cleanup := func(e *Engine) error {
		_, err := e.Teardown(context.Background(), testSandbox, TeardownOptions{By: "cleanup"})
		return err
	}
	cases := []struct {
		name       string
		mechanics  fakeMechanics
		sinkErr    error
		call       func(*Engine) error
		wantEvents []audit.Event
		wantErr    string
		wantRecErr string
	}{
		{"prepare failed", fakeMechanics{prepareErr: errors.New("image missing")},
			nil, prepare, []audit.Event{audit.EventPrepareFailed}, "image missing", "image missing"},
		{"a job does not run unaudited", fakeMechanics{},
			errors.New("disk full"), prepare, nil, "write audit trail: disk full", ""},
		{"cleanup of a sandbox that is gone records nothing", fakeMechanics{exists: false},
			nil, cleanup, nil, "", ""},
		{"daemon unreachable at cleanup: said in the record", fakeMechanics{exists: true, producedErr: errors.New("daemon exited"), removed: Removed{Networks: []string{"n"}}},
			nil, cleanup, []audit.Event{audit.EventSandboxProduced, audit.EventSandboxDestroyed}, "", "asking the job's daemon: daemon exited"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sink := &recordingSink{err: tc.sinkErr}
			err := tc.call(auditedEngine(&tc.mechanics, sink))
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
