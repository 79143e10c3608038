package stages

import (
	"context"
	"io"
	"os"

	"github.com/sirupsen/logrus"

	"gitlab.com/dind-executor/dind-executor/config"
	"gitlab.com/dind-executor/dind-executor/executor"
)

// Engine is what the hooks need from the executor: the sandbox lifecycle,
// which also writes the audit trail. *executor.Engine is the real one.
type Engine interface {
	Prepare(ctx context.Context, s executor.Spec) (*executor.Sandbox, error)
	Exec(ctx context.Context, id executor.SandboxID, o executor.ExecOptions) (executor.ExecResult, error)
	Teardown(ctx context.Context, id executor.SandboxID, o executor.TeardownOptions) (executor.Removed, error)
	Close() error
}

// Hooks runs the four runner hooks. Fields are set once by cmd.
type Hooks struct {
	Config   config.Config
	Env      RunnerEnv
	Hostname string // the runner host's name: part of the sandbox id
	Version  string // dind-executor's version, shown by the config hook

	// Stdout and Stderr are the hook's own streams: for prepare and run the
	// runner copies both into the job log.
	Stdout io.Writer
	Stderr io.Writer
	Log    logrus.FieldLogger

	// Connect opens the Engine; only hooks that need Docker call it.
	Connect func() (Engine, error)

	// RefillPool starts topping up the warm pool in the background, apart
	// from the hook's process group (nil: no pool).
	RefillPool func() error
}

// sandboxID derives this attempt's sandbox id from the runner's files.
func (h *Hooks) sandboxID() (executor.SandboxID, error) {
	path, err := h.Env.jobResponsePath()
	if err != nil {
		return "", err
	}
	return SandboxID(h.Hostname, path), nil
}

// identity reads the job response and names the sandbox.
func (h *Hooks) identity() (executor.Identity, *JobResponse, error) {
	path, err := h.Env.jobResponsePath()
	if err != nil {
		return executor.Identity{}, nil, err
	}
	job, err := ReadJobResponse(h.Env.JobResponseFile)
	if err != nil {
		return executor.Identity{}, nil, err
	}
	return executor.Identity{
		SandboxID:   SandboxID(h.Hostname, path),
		JobID:       *job.ID,
		ProjectID:   job.JobInfo.ProjectID,
		PipelineID:  job.JobInfo.PipelineID,
		ProjectPath: job.JobInfo.ProjectFullPath,
		JobName:     job.JobInfo.Name,
		UserLogin:   job.userLogin(),
		ProjectKey:  projectKey(job),

		RunnerHost:        h.Hostname,
		JobResponseFile:   path,
		JobTimeoutSeconds: job.TimeoutSeconds(),
		Owner:             h.runnerProcess(),
	}, job, nil
}

// runnerProcess is the process that runs the hooks: GitLab Runner starts
// each hook as its own child. When it dies without cleanup (OOM killer,
// SIGKILL), gc removes the sandbox at once. Zero when it cannot be read:
// gc then goes by the runner's temp dir and age.
func (h *Hooks) runnerProcess() executor.Owner {
	owner, err := executor.OwnerOf(os.Getppid())
	if err != nil {
		h.Log.WithError(err).Warn("cannot identify the runner process: gc will judge this sandbox by age")
	}
	return owner
}
