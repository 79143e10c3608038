package executor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// GCMargin is added to a job's timeout to get the age past which its
// sandbox cannot belong to a running job: the runner stops every job at
// its timeout, and the job's certificates expire at timeout plus this
// margin, after which its daemon refuses every client anyway.
const GCMargin = time.Hour

// GCPolicy says which sandboxes are over.
type GCPolicy struct {
	// OlderThan removes sandboxes older than this whose job is not known to
	// be running. 0: each sandbox's own job timeout plus GCMargin.
	OlderThan time.Duration
	// Hostname is this machine's name: the runner's temp dir of a sandbox
	// made on another host cannot be checked from here.
	Hostname string
	Now      time.Time
	// DirExists reports whether a directory exists; nil: os.Stat.
	DirExists func(dir string) (bool, error)
	// OwnerAlive says whether a sandbox's runner process runs, and
	// whether that can be told from here; nil: Owner.Alive.
	OwnerAlive func(Owner) (alive, known bool)
}

// GCVerdict is what gc decided about one sandbox, and why.
type GCVerdict struct {
	Sandbox SandboxInfo
	Remove  bool
	Reason  string
}

// Judge decides whether sb's job is over. For a sandbox made on this host,
// the job is known to be over when the runner process that prepared it is
// gone (checked only where this process sees that runner's pid namespace)
// or, in that same namespace, when the runner's temp dir holding its
// JOB_RESPONSE_FILE is gone (the runner removes it only after cleanup). While both remain, the job is
// running and its sandbox is kept until it is older than its job could
// run, whatever OlderThan says. Otherwise (another host, labels from an
// older version) only age decides.
func (p GCPolicy) Judge(sb SandboxInfo) (GCVerdict, error) {
	v := GCVerdict{Sandbox: sb}
	id := sb.Identity
	age := sb.Age(p.Now)
	jobLimit := id.JobTimeout() + GCMargin
	limit := p.OlderThan
	if limit <= 0 {
		limit = jobLimit
	}

	sameHost := id.RunnerHost != "" && id.RunnerHost == p.Hostname
	// The runner's temp dir is in its own files: where gc cannot see the
	// runner's process (another pid namespace: a runner in a container
	// given the host's name, or gc run from one), it cannot see its /tmp
	// either, and a missing dir proves nothing.
	sameFiles := sameHost
	if sameHost {
		alive, known := p.ownerAlive(id.Owner)
		if known && !alive {
			v.Remove, v.Reason = true, fmt.Sprintf("job over: the runner process %d that prepared it is gone", id.Owner.PID)
			return v, nil
		}
		sameFiles = known || id.Owner.PIDNamespace == ""
	}
	if sameFiles && filepath.IsAbs(id.JobResponseFile) {
		dir := filepath.Dir(id.JobResponseFile)
		exists, err := p.dirExists(dir)
		if err != nil {
			return v, fmt.Errorf("sandbox %s: check the runner's temp dir %s: %w", id.SandboxID, dir, err)
		}
		if !exists {
			v.Remove, v.Reason = true, fmt.Sprintf("job over: the runner's temp dir %s is gone", dir)
			return v, nil
		}
		if age > max(limit, jobLimit) {
			v.Remove, v.Reason = true, fmt.Sprintf("older than its job's timeout plus %s (%s), though the runner's temp dir %s remains", GCMargin, round(age), dir)
			return v, nil
		}
		v.Reason = fmt.Sprintf("job running: the runner's temp dir %s exists", dir)
		return v, nil
	}
	if age > limit {
		v.Remove, v.Reason = true, fmt.Sprintf("older than %s (%s old)", round(limit), round(age))
		return v, nil
	}
	v.Reason = fmt.Sprintf("younger than %s (%s old)", round(limit), round(age))
	return v, nil
}

func (p GCPolicy) ownerAlive(o Owner) (alive, known bool) {
	if p.OwnerAlive != nil {
		return p.OwnerAlive(o)
	}
	return o.Alive()
}

func (p GCPolicy) dirExists(dir string) (bool, error) {
	if p.DirExists != nil {
		return p.DirExists(dir)
	}
	info, err := os.Stat(dir)
	switch {
	case err == nil:
		return info.IsDir(), nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, err
	}
}

func round(d time.Duration) time.Duration { return d.Round(time.Second) }
