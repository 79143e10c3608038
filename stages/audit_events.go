package stages

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/executor/audit"
)

// AuditSink receives the audit trail's records; *audit.Writer is the real one.
type AuditSink interface {
	Append(audit.Record) error
}

// auditReader is what the trail reads back from the Engine beyond the
// hooks' Engine; *executor.Engine has it. An Engine without it still gets
// records, with what the hooks know themselves.
type auditReader interface {
	Describe(ctx context.Context, id executor.Identity) (executor.Description, error)
	Produced(ctx context.Context, sandboxID string) (executor.Produced, error)
	SandboxByID(ctx context.Context, sandboxID string) (executor.SandboxInfo, bool, error)
}

// producedTimeout bounds asking the job's daemon what it produced: a hung
// daemon must not eat the teardown's own time.
const producedTimeout = 30 * time.Second

// Auditor writes the trail's records for one executor process.
type Auditor struct {
	Sink AuditSink // nil: records are dropped
	Log  logrus.FieldLogger
	Host string // this machine
	Now  func() time.Time
}

// Append stamps r with the time and host and writes it; a failure is
// logged as well as returned.
func (a Auditor) Append(r audit.Record) error {
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	r.Time, r.Host = now().UTC(), a.Host
	if a.Sink == nil {
		return nil
	}
	if err := a.Sink.Append(r); err != nil {
		if a.Log != nil {
			a.Log.WithError(err).WithField("event", r.Event).Warn("audit trail not written")
		}
		return fmt.Errorf("write audit trail: %w", err)
	}
	return nil
}

func (h *Hooks) auditor() Auditor {
	return Auditor{Sink: h.Audit, Log: h.Log, Host: h.Hostname, Now: h.Now}
}

// jobRef names the job for the trail from the job response (the runner's,
// so the job cannot forge it), or only by sandbox when it is unreadable.
func jobRef(job *JobResponse) audit.JobRef {
	if job == nil || job.ID == nil {
		return audit.JobRef{}
	}
	return audit.JobRef{
		ID: *job.ID, Name: job.JobInfo.Name,
		ProjectID: job.JobInfo.ProjectID, ProjectPath: job.JobInfo.ProjectFullPath, PipelineID: job.JobInfo.PipelineID,
		UserLogin: job.variable("GITLAB_USER_LOGIN"),
	}
}

func jobRefFromIdentity(id executor.Identity) audit.JobRef {
	return audit.JobRef{ID: id.JobID, Name: id.JobName, ProjectID: id.ProjectID, ProjectPath: id.ProjectPath, PipelineID: id.PipelineID}
}

// currentJobRef reads the job response again for a hook that has not.
func (h *Hooks) currentJobRef() audit.JobRef {
	job, err := ReadJobResponse(h.Env.JobResponseFile)
	if err != nil {
		return audit.JobRef{}
	}
	return jobRef(job)
}

// auditPrepared records the sandbox as the Engine made it, or why prepare
// failed, and returns prepErr. When a sandbox was made but its record could
// not be written, it returns that error instead: a job must not run
// unaudited.
func (h *Hooks) auditPrepared(ctx context.Context, engine Engine, id executor.Identity, job *JobResponse, spec executor.Spec, sb *executor.Sandbox, prepErr error) error {
	a := h.auditor()
	rec := audit.Record{Sandbox: id.SandboxID, Job: jobRef(job)}
	if prepErr != nil {
		rec.Event, rec.Error = audit.EventPrepareFailed, prepErr.Error()
		_ = a.Append(rec)
		return prepErr
	}
	rec.Event = audit.EventSandboxCreated
	rec.Created = createdRecord(spec, sb)
	rec.Created.RunnerVersion, rec.Created.ExecutorVersion = h.Env.RunnerVersion, h.Version
	if r, ok := engine.(auditReader); ok {
		desc, err := r.Describe(ctx, id)
		addDescription(rec.Created, desc)
		if err != nil {
			rec.Error = "reading the sandbox back: " + err.Error()
		}
	}
	return a.Append(rec)
}

// createdRecord is what prepare knows without asking the Engine again.
func createdRecord(spec executor.Spec, sb *executor.Sandbox) *audit.Created {
	c := &audit.Created{
		DaemonSecurity: string(spec.DaemonSecurity),
		Limits:         auditLimits(spec.Limits),
		Images:         []audit.Image{},
		Containers:     []audit.Container{},
	}
	if sb != nil {
		c.Network, c.MTU, c.ReadyMS = sb.Network, sb.MTU, sb.ReadyAfter.Milliseconds()
		c.CA = audit.CA{Fingerprint: sb.CAFingerprint, NotAfter: sb.CertsNotAfter.UTC()}
		c.PooledSandbox, c.LayerCache = sb.FromPool, sb.DataRoot
	}
	return c
}

// addDescription puts what the Engine reports over what was asked for.
func addDescription(c *audit.Created, d executor.Description) {
	for _, r := range d.Containers {
		c.Images = append(c.Images, audit.Image{Role: string(r.Role), Ref: r.ImageRef, ID: r.ImageID, RepoDigests: r.RepoDigests})
		c.Containers = append(c.Containers, audit.Container{
			Role: string(r.Role), Name: r.Name, ID: r.ID, Privileged: r.Privileged,
			CapAdd: r.CapAdd, CapDrop: r.CapDrop, SecurityOpt: r.SecurityOpt, DeviceRules: r.DeviceRules,
			Binds: r.Binds, User: r.User, Limits: auditLimits(r.Limits),
		})
	}
	if d.Network != "" {
		c.Network = d.Network
	}
	if d.MTU != 0 {
		c.MTU = d.MTU
	}
	if d.CA.Fingerprint != "" {
		c.CA = audit.CA{Fingerprint: d.CA.Fingerprint, NotBefore: d.CA.NotBefore.UTC(), NotAfter: d.CA.NotAfter.UTC()}
	}
}

func auditLimits(l executor.Limits) audit.Limits {
	return audit.Limits{NanoCPUs: l.NanoCPUs, MemoryBytes: l.MemoryBytes, Pids: l.Pids}
}

// auditStage records how a stage ended. A failed write is logged only:
// the stage has already run.
func (h *Hooks) auditStage(sandboxID, stage string, role executor.Role, res executor.ExecResult, execErr error) {
	rec := audit.Record{
		Event: audit.EventStageFinished, Sandbox: sandboxID, Job: h.currentJobRef(),
		Stage: &audit.Stage{
			Name: stage, Container: string(role), ExitCode: res.ExitCode,
			DurationMS: res.Duration.Milliseconds(), OutputBytes: res.OutputBytes, Canceled: res.Canceled,
		},
	}
	if execErr != nil {
		rec.Error = execErr.Error()
	}
	_ = h.auditor().Append(rec)
}

// teardown is the cleanup hook's audited teardown.
func (h *Hooks) teardown(ctx context.Context, engine Engine, sandboxID string) (executor.Removed, error) {
	return h.auditor().Teardown(ctx, engine, sandboxID, h.currentJobRef(), "cleanup", "")
}

// Tearer is what an audited teardown needs from the Engine.
type Tearer interface {
	Teardown(ctx context.Context, sandboxID string) (executor.Removed, error)
}

// Teardown removes a sandbox and records, first, what its daemon produced,
// then what was removed and how long the sandbox lived. cleanup and gc both
// use it. job may be zero: the sandbox's labels name the job then. Audit
// failures are logged; only the teardown's own error is returned.
func (a Auditor) Teardown(ctx context.Context, engine Tearer, sandboxID string, job audit.JobRef, by, reason string) (executor.Removed, error) {
	a.waitForEngine(ctx, engine)
	var created time.Time
	var exists bool
	reader, canRead := engine.(auditReader)
	if canRead {
		info, ok, err := reader.SandboxByID(ctx, sandboxID)
		exists, created = ok, info.Created
		if err == nil && ok && job.ID == 0 {
			job = jobRefFromIdentity(info.Identity)
		}
	}
	if exists {
		pctx, cancel := context.WithTimeout(ctx, producedTimeout)
		produced, err := reader.Produced(pctx, sandboxID)
		cancel()
		rec := audit.Record{Event: audit.EventSandboxProduced, Sandbox: sandboxID, Job: job, Produced: producedRecord(produced)}
		if err != nil {
			rec.Error = "asking the job's daemon: " + err.Error()
		}
		_ = a.Append(rec)
	}

	removed, err := engine.Teardown(ctx, sandboxID)
	if canRead && !exists && err == nil && len(removed.Containers)+len(removed.Volumes)+len(removed.Networks) == 0 {
		return removed, nil // nothing was there: a second cleanup, or after gc
	}
	rec := audit.Record{Event: audit.EventSandboxDestroyed, Sandbox: sandboxID, Job: job, Destroyed: &audit.Destroyed{
		By: by, Reason: reason,
		Containers: nonNil(removed.Containers), Volumes: nonNil(removed.Volumes), Networks: nonNil(removed.Networks),
	}}
	if !created.IsZero() {
		now := time.Now
		if a.Now != nil {
			now = a.Now
		}
		rec.Destroyed.LivedMS = now().Sub(created).Milliseconds()
	}
	if err != nil {
		rec.Error = err.Error()
	}
	_ = a.Append(rec)
	return removed, err
}

// engineWait bounds how long a teardown waits for an Engine that does not
// answer: one that restarts is back within seconds, and cleanup has
// minutes. Past it, teardown fails and gc removes the sandbox later.
const engineWait = time.Minute

func (a Auditor) waitForEngine(ctx context.Context, engine Tearer) {
	p, ok := engine.(interface{ Ping(context.Context) error })
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, engineWait)
	defer cancel()
	for i := 0; p.Ping(ctx) != nil; i++ {
		if i == 0 && a.Log != nil {
			a.Log.Warnf("the Docker Engine does not answer; waiting up to %s for it before teardown", engineWait)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func producedRecord(p executor.Produced) *audit.Produced {
	out := &audit.Produced{Images: []audit.ProducedImage{}, Containers: []audit.ProducedContainer{}, Truncated: p.Truncated}
	for _, img := range p.Images {
		out.Images = append(out.Images, audit.ProducedImage{ID: img.ID, Tags: img.Tags, RepoDigests: img.RepoDigests, Created: img.Created, Size: img.Size})
	}
	for _, c := range p.Containers {
		out.Containers = append(out.Containers, audit.ProducedContainer{ID: c.ID, Name: c.Name, Image: c.Image, ImageID: c.ImageID, State: c.State, ExitCode: c.ExitCode})
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// jobResponseFile is the absolute JOB_RESPONSE_FILE, for the labels gc
// reads; "" when it is not set (the hook fails earlier then).
func (h *Hooks) jobResponseFile() string {
	path, _ := h.Env.jobResponsePath()
	return path
}

// execExplainer is how an Engine says what became of a sandbox after an
// exec failed; *executor.Engine has it.
type execExplainer interface {
	ExplainExecFailure(id executor.Identity, role executor.Role, exitCode int) string
}

// explainExecFailure adds to a failed exec's error what the Engine says
// happened to the sandbox, so the job log tells the user why. A script that
// exited non-zero because its container was stopped under it (the Engine
// restarting kills every process: 137) did not fail by itself: that is a
// system failure too.
func explainExecFailure(engine Engine, sandboxID string, role executor.Role, res executor.ExecResult, err error) error {
	if err == nil && res.ExitCode == 0 {
		return nil
	}
	x, ok := engine.(execExplainer)
	if !ok {
		return err
	}
	why := x.ExplainExecFailure(executor.Identity{SandboxID: sandboxID}, role, res.ExitCode)
	switch {
	case why == "":
		return err
	case err == nil:
		return fmt.Errorf("the script ended with code %d because %s", res.ExitCode, why)
	default:
		return fmt.Errorf("%w: %s", err, why)
	}
}
