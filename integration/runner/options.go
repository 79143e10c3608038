package runner

import "time"

// RunOption changes one Run.
type RunOption func(*runConfig)

type triggerKind int

const (
	triggerCancel triggerKind = iota // user cancel (UI/API "canceling")
	triggerAbort                     // job abort / runner shutdown
)

type trigger struct {
	kind  triggerKind
	stage string
	after time.Duration
}

type runConfig struct {
	userStage  string
	jobTimeout time.Duration
	triggers   []trigger
	onStart    []func(x Exec, pid int)
}

func newRunConfig(opts []RunOption) runConfig {
	rc := runConfig{userStage: StageBuildScript}
	for _, o := range opts {
		o(&rc)
	}
	return rc
}

// WithUserStageName sets the stage argument sent for the runner's
// step_script stage. The runner sends "build_script" (the default); pass
// "step_script" to send the name unrewritten.
func WithUserStageName(name string) RunOption {
	return func(rc *runConfig) { rc.userStage = name }
}

// CancelDuringStage cancels the job the way a user does from the UI, after
// the exec for stage has been running for `after` (only if it is still
// running then). stage is "config", "prepare", "cleanup" or a run stage
// (sent name like "build_script" or runner name like "step_script").
//
// As in the runner: while the user scripts run, only the script context is
// cancelled, so the running exec gets SIGTERM (then SIGKILL after
// GracefulKillTimeout) and after_script (CI_JOB_STATUS=canceled),
// archive_cache_on_failure, upload_artifacts_on_failure and
// cleanup_file_variables still run. Earlier, it cancels the whole job (like
// an abort); later, it has no effect.
func CancelDuringStage(stage string, after time.Duration) RunOption {
	return func(rc *runConfig) { rc.triggers = append(rc.triggers, trigger{triggerCancel, stage, after}) }
}

// AbortDuringStage cancels the job context (job abort, runner shutdown)
// after the exec for stage has been running for `after`: the running exec is
// signalled, every later stage is skipped and only cleanup runs.
func AbortDuringStage(stage string, after time.Duration) RunOption {
	return func(rc *runConfig) { rc.triggers = append(rc.triggers, trigger{triggerAbort, stage, after}) }
}

// JobTimeout replaces the job timeout (Job.Timeout seconds) for this run:
// when it expires the job context ends, the running exec is signalled, later
// stages are skipped and only cleanup runs.
func JobTimeout(d time.Duration) RunOption {
	return func(rc *runConfig) { rc.jobTimeout = d }
}

// OnExecStart calls f (from the emulator's goroutine) each time a driver
// exec has started; x has Kind, Stage, Argv and TempDir filled in.
func OnExecStart(f func(x Exec, pid int)) RunOption {
	return func(rc *runConfig) { rc.onStart = append(rc.onStart, f) }
}

func (t trigger) matches(kind ExecKind, stage, buildStage string) bool {
	if kind == ExecRun {
		return t.stage == stage || t.stage == buildStage
	}
	return t.stage == string(kind)
}
