package stages

import (
	"errors"
	"fmt"
)

// BuildFailure is a user script that exited non-zero: the job failed, the
// sandbox did not. Every other error a hook returns is a system failure.
type BuildFailure struct {
	ExitCode int
	Stage    string
}

func (b *BuildFailure) Error() string {
	return fmt.Sprintf("stage %s: script exited with code %d", b.Stage, b.ExitCode)
}

// ExitCode maps a hook's outcome to the process exit code the runner
// expects, writing BUILD_EXIT_CODE_FILE for a build failure. When that file
// cannot be written the failure is reported as a system one: the runner
// would otherwise record a wrong exit code.
func ExitCode(err error, env RunnerEnv) (int, error) {
	if err == nil {
		return 0, nil
	}
	var build *BuildFailure
	if errors.As(err, &build) {
		if werr := env.writeBuildExitCode(build.ExitCode); werr != nil {
			return env.SystemFailureExitCode, werr
		}
		return env.BuildFailureExitCode, nil
	}
	return env.SystemFailureExitCode, nil
}
