package stages

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"gitlab.com/gitlab-org/gitlab-runner/executors/custom/api"
)

// RunnerEnv is what the runner itself tells every hook.
//
// Trust boundary: the variables named by the api package, and TMPDIR, are
// set by the runner after the job's variables could have been, so the job
// cannot forge them. Everything CUSTOM_ENV_* comes from the job and may be
// set by it: it is used for cosmetics (which helper image tag matches the
// runner) and never for the sandbox's identity or rights.
type RunnerEnv struct {
	JobResponseFile       string
	BuildExitCodeFile     string
	BuildFailureExitCode  int
	SystemFailureExitCode int
	TempDir               string

	// From CUSTOM_ENV_*: job-settable, cosmetic only.
	RunnerVersion  string
	RunnerRevision string
	RunnerArch     string
}

// Exit codes the runner uses when the variables are absent.
const (
	defaultBuildFailureExitCode  = 1
	defaultSystemFailureExitCode = 2
)

// ReadRunnerEnv collects the runner's variables through getenv.
func ReadRunnerEnv(getenv func(string) string) RunnerEnv {
	return RunnerEnv{
		JobResponseFile:       getenv(api.JobResponseFileVariable),
		BuildExitCodeFile:     getenv(api.BuildCodeFileVariable),
		BuildFailureExitCode:  exitCodeVar(getenv(api.BuildFailureExitCodeVariable), defaultBuildFailureExitCode),
		SystemFailureExitCode: exitCodeVar(getenv(api.SystemFailureExitCodeVariable), defaultSystemFailureExitCode),
		TempDir:               getenv("TMPDIR"),
		RunnerVersion:         getenv("CUSTOM_ENV_CI_RUNNER_VERSION"),
		RunnerRevision:        getenv("CUSTOM_ENV_CI_RUNNER_REVISION"),
		RunnerArch:            getenv("CUSTOM_ENV_CI_RUNNER_EXECUTABLE_ARCH"),
	}
}

func exitCodeVar(v string, fallback int) int {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > 255 {
		return fallback
	}
	return n
}

// jobResponsePath is the absolute JOB_RESPONSE_FILE, or an error saying
// the binary was not started by a runner.
func (e RunnerEnv) jobResponsePath() (string, error) {
	if e.JobResponseFile == "" {
		return "", fmt.Errorf("%s is not set: dind-executor hooks must be run by GitLab Runner's custom executor ([runners.custom] in config.toml)", api.JobResponseFileVariable)
	}
	return filepath.Abs(e.JobResponseFile)
}

// writeBuildExitCode records a script's exit status where the runner
// reads it on a build failure. The file is shared by every call of a job.
func (e RunnerEnv) writeBuildExitCode(code int) error {
	if e.BuildExitCodeFile == "" {
		return nil
	}
	if err := os.WriteFile(e.BuildExitCodeFile, []byte(strconv.Itoa(code)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", api.BuildCodeFileVariable, err)
	}
	return nil
}
