package executor

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"

	"gitlab.com/dind-executor/dind-executor/executor/audit"
)

// AuditSink receives the audit trail's records; *audit.Writer is the real one.
type AuditSink interface {
	Append(audit.Record) error
}

// trail turns what the Engine did into audit records. Records are built
// from typed fields only: no variable, script, environment or credential
// can reach them.
type trail struct {
	sink    AuditSink // nil: records are dropped
	log     logrus.FieldLogger
	host    string
	version string
	now     func() time.Time
}

// append stamps r with the time and host and writes it; a failure is
// logged as well as returned.
func (t trail) append(r audit.Record) error {
	r.Time, r.Host = t.now().UTC(), t.host
	if t.sink == nil {
		return nil
	}
	if err := t.sink.Append(r); err != nil {
		t.log.WithError(err).WithField("event", r.Event).Warn("audit trail not written")
		return fmt.Errorf("write audit trail: %w", err)
	}
	return nil
}

func jobRef(id Identity) audit.JobRef {
	return audit.JobRef{ID: id.JobID, Name: id.JobName, ProjectID: id.ProjectID, ProjectPath: id.ProjectPath,
		PipelineID: id.PipelineID, UserLogin: id.UserLogin}
}

func (t trail) prepareFailed(id Identity, err error) {
	_ = t.append(audit.Record{Event: audit.EventPrepareFailed, Sandbox: string(id.SandboxID), Job: jobRef(id), Error: err.Error()})
}

// created records the sandbox: the CA, network and readiness from the
// executor's own memory, the containers' images and rights as the Engine
// reports them (desc).
func (t trail) created(p plan, sb *Sandbox, desc Description, descErr error) error {
	id := p.Identity
	c := &audit.Created{
		RunnerVersion:   p.RunnerVersion,
		ExecutorVersion: t.version,
		DaemonSecurity:  string(p.Daemon.Security),
		Engine:          sb.Engine,
		Limits:          auditLimits(p.Limits),
		Images:          []audit.Image{},
		Containers:      []audit.Container{},
		Network:         sb.Network,
		MTU:             sb.MTU,
		ReadyMS:         sb.ReadyAfter.Milliseconds(),
		CA:              audit.CA{Fingerprint: sb.CA.Fingerprint, NotBefore: sb.CA.NotBefore.UTC(), NotAfter: sb.CA.NotAfter.UTC()},
		PooledSandbox:   string(sb.FromPool),
		LayerCache:      sb.DataRoot,
		PlainNetwork:    sb.PlainNetwork,
	}
	for _, r := range desc.Containers {
		c.Images = append(c.Images, audit.Image{Role: string(r.Role), Ref: r.ImageRef, ID: r.ImageID, RepoDigests: r.RepoDigests})
		c.Containers = append(c.Containers, audit.Container{
			Role: string(r.Role), Name: r.Name, ID: r.ID, Privileged: r.Privileged,
			CapAdd: r.CapAdd, CapDrop: r.CapDrop, SecurityOpt: r.SecurityOpt, DeviceRules: r.DeviceRules,
			Devices: r.Devices, UnmaskedPaths: r.UnmaskedPaths,
			Binds: r.Binds, User: r.User, Limits: auditLimits(r.Limits),
		})
	}
	if desc.Network != "" {
		c.Network = desc.Network
	}
	if desc.MTU != 0 {
		c.MTU = desc.MTU
	}
	rec := audit.Record{Event: audit.EventSandboxCreated, Sandbox: string(id.SandboxID), Job: jobRef(id), Created: c}
	if descErr != nil {
		rec.Error = "reading the sandbox back: " + descErr.Error()
	}
	return t.append(rec)
}

func auditLimits(l Limits) audit.Limits {
	return audit.Limits{NanoCPUs: l.NanoCPUs, MemoryBytes: l.MemoryBytes, Pids: l.Pids}
}

// stage records how a stage ended. A failed write is logged only: the
// stage has already run.
func (t trail) stage(id Identity, o ExecOptions, res ExecResult, err error) {
	rec := audit.Record{
		Event: audit.EventStageFinished, Sandbox: string(id.SandboxID), Job: jobRef(id),
		Stage: &audit.Stage{
			Name: o.Stage, Container: string(o.Role), ExitCode: res.ExitCode,
			DurationMS: res.Duration.Milliseconds(), OutputBytes: res.OutputBytes, Canceled: res.Canceled,
		},
	}
	if err != nil {
		rec.Error = err.Error()
	}
	_ = t.append(rec)
}

func (t trail) produced(id Identity, p Produced, err error) {
	out := &audit.Produced{Images: []audit.ProducedImage{}, Containers: []audit.ProducedContainer{}, Truncated: p.Truncated}
	for _, img := range p.Images {
		out.Images = append(out.Images, audit.ProducedImage{ID: img.ID, Tags: img.Tags, RepoDigests: img.RepoDigests, Created: img.Created, Size: img.Size})
	}
	for _, c := range p.Containers {
		out.Containers = append(out.Containers, audit.ProducedContainer{ID: c.ID, Name: c.Name, Image: c.Image, ImageID: c.ImageID, State: c.State, ExitCode: c.ExitCode})
	}
	rec := audit.Record{Event: audit.EventSandboxProduced, Sandbox: string(id.SandboxID), Job: jobRef(id), Produced: out}
	if err != nil {
		rec.Error = cutText("asking the job's daemon: "+err.Error(), maxRecordedError)
	}
	fitProduced(&rec)
	_ = t.append(rec)
}

// maxRecordedError bounds an error in a record: the job's daemon writes
// some of its words.
const maxRecordedError = 4 << 10

// fitProduced keeps the first half of the lists, over and over, until the
// record fits an audit line: what the job's daemon reports (tags, names) is
// the job's to make long, and a record too long would not be written at
// all.
func fitProduced(rec *audit.Record) {
	for {
		line, err := json.Marshal(rec)
		if err != nil || len(line)+1 <= audit.MaxRecordBytes {
			return
		}
		p := rec.Produced
		if len(p.Images) == 0 && len(p.Containers) == 0 {
			return // the rest is the executor's own, and short
		}
		p.Images, p.Containers, p.Truncated = p.Images[:len(p.Images)/2], p.Containers[:len(p.Containers)/2], true
	}
}

// cutText keeps at most max bytes of s, cut at a character boundary.
func cutText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

func (t trail) destroyed(id Identity, created time.Time, o TeardownOptions, removed Removed, err error) {
	rec := audit.Record{Event: audit.EventSandboxDestroyed, Sandbox: string(id.SandboxID), Job: jobRef(id), Destroyed: &audit.Destroyed{
		By: o.By, Reason: o.Reason,
		Containers: nonNil(removed.Containers), Volumes: nonNil(removed.Volumes), Networks: nonNil(removed.Networks),
	}}
	if !created.IsZero() {
		rec.Destroyed.LivedMS = t.now().Sub(created).Milliseconds()
	}
	if err != nil {
		rec.Error = err.Error()
	}
	_ = t.append(rec)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
