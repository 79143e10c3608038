package executor

import (
	"fmt"
	"regexp"
	"strconv"
)

// Identity says which job a sandbox serves. SandboxID is unique per job
// attempt (two runners whose job ids collide still get two sandboxes); the
// other fields are for labels and audits.
type Identity struct {
	SandboxID   string
	JobID       int64
	ProjectID   int64
	PipelineID  int64
	ProjectPath string
	JobName     string
	// ProjectKey names the project's cache volume, which outlives the
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
}

var sandboxIDPattern = regexp.MustCompile(`^[a-z0-9]{8,32}$`)

// Validate rejects a sandbox id that could not safely be part of object names.
func (id Identity) Validate() error {
	if !sandboxIDPattern.MatchString(id.SandboxID) {
		return fmt.Errorf("sandbox id %q must be 8 to 32 lowercase letters or digits", id.SandboxID)
	}
	return nil
}

// Role is a part of the sandbox; it ends each object's name and is a label.
type Role string

const (
	RoleNetwork  Role = "network"
	RoleDaemon   Role = "daemon"
	RoleBuild    Role = "build"
	RoleHelper   Role = "helper"
	RoleBuilds   Role = "builds"   // volume at builds_dir
	RoleCache    Role = "cache"    // volume at cache_dir
	RoleDataRoot Role = "dataroot" // volume at the inner daemon's /var/lib/docker
	RoleService  Role = "service"
)

// Name is the Engine object name of a sandbox part: names are derived, never
// stored, so every hook finds the same objects.
func (id Identity) Name(role Role) string {
	return "dind-" + id.SandboxID + "-" + string(role)
}

// Label keys; every object a sandbox creates carries all of them.
const (
	labelPrefix      = "io.dind-executor."
	LabelManaged     = labelPrefix + "managed"
	LabelSandbox     = labelPrefix + "sandbox.id"
	LabelRole        = labelPrefix + "role"
	LabelJobID       = labelPrefix + "job.id"
	LabelJobName     = labelPrefix + "job.name"
	LabelProjectID   = labelPrefix + "project.id"
	LabelProjectPath = labelPrefix + "project.path"
	LabelPipelineID  = labelPrefix + "pipeline.id"
	LabelProjectKey  = labelPrefix + "project.key"
	LabelService     = labelPrefix + "service"
	LabelRunnerHost  = labelPrefix + "runner.host"
	LabelJobResponse = labelPrefix + "job.response"
	LabelJobTimeout  = labelPrefix + "job.timeout"
)

// CacheVolume names the volume mounted at cache_dir: the project's own,
// kept between jobs so the runner's cache round-trips, or the sandbox's.
func (id Identity) CacheVolume() string {
	if id.ProjectKey == "" {
		return id.Name(RoleCache)
	}
	return "dind-cache-" + id.ProjectKey
}

// cacheVolumeLabels label a project cache volume without the sandbox id,
// so teardown leaves it for the project's next job.
func (id Identity) cacheVolumeLabels() map[string]string {
	if id.ProjectKey == "" {
		return id.Labels(RoleCache)
	}
	return map[string]string{
		LabelManaged:     "true",
		LabelRole:        string(RoleCache),
		LabelProjectID:   strconv.FormatInt(id.ProjectID, 10),
		LabelProjectPath: id.ProjectPath,
		LabelProjectKey:  id.ProjectKey,
	}
}

// Labels is the one labeler for every object of the sandbox.
func (id Identity) Labels(role Role) map[string]string {
	return map[string]string{
		LabelManaged:     "true",
		LabelSandbox:     id.SandboxID,
		LabelRole:        string(role),
		LabelJobID:       strconv.FormatInt(id.JobID, 10),
		LabelJobName:     id.JobName,
		LabelProjectID:   strconv.FormatInt(id.ProjectID, 10),
		LabelProjectPath: id.ProjectPath,
		LabelPipelineID:  strconv.FormatInt(id.PipelineID, 10),
		LabelRunnerHost:  id.RunnerHost,
		LabelJobResponse: id.JobResponseFile,
		LabelJobTimeout:  strconv.FormatInt(id.JobTimeoutSeconds, 10),
	}
}
