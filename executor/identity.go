package executor

import (
	"strconv"
	"time"
)

// DefaultJobTimeout is GitLab Runner's own job timeout, for a job response
// that states none and for sandboxes whose labels do not say theirs.
const DefaultJobTimeout = 2 * time.Hour

// Identity says which job a sandbox serves. SandboxID is unique per job
// attempt (two runners whose job ids collide still get two sandboxes); the
// other fields are written to every object's labels, for ps, gc and the
// audit trail.
type Identity struct {
	SandboxID   SandboxID
	JobID       int64
	ProjectID   int64
	PipelineID  int64
	ProjectPath string
	JobName     string
	UserLogin   string // who started the job
	// ProjectKey names the project's cache volumes, which outlive the
	// sandbox; it must tell apart projects of different GitLab instances
	// whose ids collide. Empty: the cache lives and dies with the sandbox.
	ProjectKey string

	// RunnerHost, JobResponseFile and JobTimeoutSeconds let gc tell, with
	// no stored state, that a sandbox's job is over: the runner deletes the
	// JOB_RESPONSE_FILE's temp dir after cleanup, and no job outlives its
	// timeout.
	RunnerHost        string
	JobResponseFile   string // absolute path on RunnerHost
	JobTimeoutSeconds int64
	// Owner is the runner process that prepared the sandbox: gc removes
	// the sandbox as soon as it is gone.
	Owner Owner
}

// Name is the Engine object name of a part of this sandbox.
func (id Identity) Name(role Role) string { return id.SandboxID.Name(role) }

// JobTimeout is the job's timeout, or the runner's default when unknown.
func (id Identity) JobTimeout() time.Duration {
	if id.JobTimeoutSeconds > 0 {
		return time.Duration(id.JobTimeoutSeconds) * time.Second
	}
	return DefaultJobTimeout
}

// CacheVolume names the volume mounted at cache_dir: the project's own,
// kept between jobs so the runner's cache round-trips, or the sandbox's.
func (id Identity) CacheVolume() string {
	if id.ProjectKey == "" {
		return id.Name(RoleCache)
	}
	return "dind-cache-" + id.ProjectKey
}

// projectVolumeLabels label a project cache volume of role without the
// sandbox id, so teardown leaves it for the project's next job.
func (id Identity) projectVolumeLabels(role Role) map[string]string {
	return map[string]string{
		LabelManaged:     "true",
		LabelRole:        string(role),
		LabelProjectID:   strconv.FormatInt(id.ProjectID, 10),
		LabelProjectPath: id.ProjectPath,
		LabelProjectKey:  id.ProjectKey,
	}
}

// cacheVolumeLabels label the volume at cache_dir.
func (id Identity) cacheVolumeLabels() map[string]string {
	if id.ProjectKey == "" {
		return id.Labels(RoleCache)
	}
	return id.projectVolumeLabels(RoleCache)
}

// Labels is the one labeler for every object of the sandbox.
func (id Identity) Labels(role Role) map[string]string {
	return map[string]string{
		LabelManaged:     "true",
		LabelSandbox:     string(id.SandboxID),
		LabelRole:        string(role),
		LabelJobID:       strconv.FormatInt(id.JobID, 10),
		LabelJobName:     id.JobName,
		LabelProjectID:   strconv.FormatInt(id.ProjectID, 10),
		LabelProjectPath: id.ProjectPath,
		LabelPipelineID:  strconv.FormatInt(id.PipelineID, 10),
		LabelUserLogin:   id.UserLogin,
		LabelRunnerHost:  id.RunnerHost,
		LabelJobResponse: id.JobResponseFile,
		LabelJobTimeout:  strconv.FormatInt(id.JobTimeoutSeconds, 10),
		LabelOwnerPID:    strconv.Itoa(id.Owner.PID),
		LabelOwnerStart:  strconv.FormatUint(id.Owner.StartTicks, 10),
		LabelOwnerPIDNS:  id.Owner.PIDNamespace,
		LabelOwnerBoot:   id.Owner.BootID,
	}
}

// IdentityFromLabels reads back the Identity that Labels wrote.
func IdentityFromLabels(labels map[string]string) Identity {
	num := func(key string) int64 {
		n, _ := strconv.ParseInt(labels[key], 10, 64)
		return n
	}
	return Identity{
		SandboxID:         SandboxID(labels[LabelSandbox]),
		JobID:             num(LabelJobID),
		ProjectID:         num(LabelProjectID),
		PipelineID:        num(LabelPipelineID),
		ProjectPath:       labels[LabelProjectPath],
		JobName:           labels[LabelJobName],
		UserLogin:         labels[LabelUserLogin],
		RunnerHost:        labels[LabelRunnerHost],
		JobResponseFile:   labels[LabelJobResponse],
		JobTimeoutSeconds: num(LabelJobTimeout),
		Owner: Owner{
			PID:          int(num(LabelOwnerPID)),
			StartTicks:   uint64(num(LabelOwnerStart)),
			PIDNamespace: labels[LabelOwnerPIDNS],
			BootID:       labels[LabelOwnerBoot],
		},
	}
}
