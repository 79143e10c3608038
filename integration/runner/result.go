package runner

import (
	"fmt"
	"time"

	"gitlab.com/gitlab-org/gitlab-runner/executors/custom/api"
)

// ExecKind is which driver hook an exec was.
type ExecKind string

const (
	ExecConfig  ExecKind = "config"
	ExecPrepare ExecKind = "prepare"
	ExecRun     ExecKind = "run"
	ExecCleanup ExecKind = "cleanup"
)

// Ending is how an exec ended.
type Ending string

const (
	EndedExited     Ending = "exited"      // exited on its own
	EndedTerminated Ending = "terminated"  // exited after SIGTERM, within GracefulKillTimeout
	EndedKilled     Ending = "killed"      // SIGKILL was sent to its group; then it ended
	EndedAbandoned  Ending = "abandoned"   // still running ForceKillTimeout after SIGKILL; given up
	EndedNotStarted Ending = "not-started" // the binary could not be started
)

// Exec records one invocation of the driver.
type Exec struct {
	Kind    ExecKind
	Attempt int // prepare attempt (1-based) the exec belongs to

	// Stage is the stage argument sent to the driver (run only, e.g.
	// "build_script"); BuildStage is the runner's own name ("step_script").
	Stage      string
	BuildStage string
	Argv       []string // full argv, Binary first
	ScriptPath string   // run only: <tmp>/script<random>/script
	TempDir    string   // <tmp> of this attempt (also the exec's cwd)

	Started  time.Time
	Duration time.Duration
	// MaxRSSKB is the driver process's peak resident memory in KiB, as its
	// VmHWM sampled while it ran (see sampleHWM).
	MaxRSSKB int64

	// ExitCode is the driver's exit status; -1 when it died by a signal or
	// did not start. Signal names the signal in the first case.
	ExitCode int
	Signal   string
	// BuildExitCode is the code read from BUILD_EXIT_CODE_FILE when ExitCode
	// is 1 (1 when the file is missing).
	BuildExitCode int
	// Failure classifies the result the way the runner does.
	Failure FailureKind
	Err     error

	Ended Ending
	// TermToExit is the time from SIGTERM to the exec's exit (or to giving
	// up), when it was signalled.
	TermToExit time.Duration
	// Output is what the exec wrote (stdout then stderr for config; both
	// interleaved for the others), unmasked.
	Output string
}

// FailureKind is the runner's reading of an exec's exit (see classify).
type FailureKind string

const (
	FailureNone    FailureKind = ""
	FailureBuild   FailureKind = "build"   // exit 1: BuildError with BuildExitCode
	FailureSystem  FailureKind = "system"  // exit 2, start failure, bad config output
	FailureUnknown FailureKind = "unknown" // other exit codes, death by signal, unparsable exit-code file
	FailureConfig  FailureKind = "config"  // configuration error (builds_dir/cache_dir missing)
)

// OutcomeKind is how the job ended.
type OutcomeKind string

const (
	OutcomeSuccess       OutcomeKind = "success"
	OutcomeBuildFailure  OutcomeKind = "build_failure"  // script_failure, Outcome.ExitCode set
	OutcomeSystemFailure OutcomeKind = "system_failure" // runner_system_failure
	OutcomeConfigError   OutcomeKind = "config_error"
	OutcomeCanceled      OutcomeKind = "canceled"
	OutcomeTimedOut      OutcomeKind = "timed_out" // job or script timeout
)

// Outcome is the job's final state as the runner would report it.
type Outcome struct {
	Kind     OutcomeKind
	ExitCode int    // build failures: the job's exit code
	Message  string // what went wrong (empty on success)
}

func (o Outcome) String() string {
	switch o.Kind {
	case OutcomeSuccess:
		return "success"
	case OutcomeBuildFailure:
		return fmt.Sprintf("build failure: exit code %d", o.ExitCode)
	}
	return fmt.Sprintf("%s: %s", o.Kind, o.Message)
}

// Result is everything observed while running one job.
type Result struct {
	Outcome Outcome
	// Execs lists every driver invocation in order, cleanup included.
	Execs []Exec
	// Skipped lists the stages the runner skipped because the job context
	// had ended (timeout, abort) before they started.
	Skipped []string
	// Log is the job log (masked), as GitLab would show it.
	Log string
	// RunnerLog is what went to the runner's own log (cleanup output).
	RunnerLog string
	// TempDirs are the <tmp> dirs of each prepare attempt; all are removed
	// when Run returns. TempDir is the last one.
	TempDirs []string
	TempDir  string
	// Config is the parsed config_exec output of the last attempt (nil if
	// config_exec printed nothing or did not succeed).
	Config *api.ConfigExecOutput
	// BuildsDir, CacheDir and ProjectDir are the directories the runner
	// computed (CI_BUILDS_DIR, cache dir, CI_PROJECT_DIR).
	BuildsDir, CacheDir, ProjectDir string
	// CancelFired reports, per CancelDuringStage/AbortDuringStage option
	// (in option order), whether it fired while its stage was running.
	CancelFired []bool
}

// RunStages returns the stage arguments of the run execs, in order.
func (r *Result) RunStages() []string {
	var out []string
	for _, x := range r.Execs {
		if x.Kind == ExecRun {
			out = append(out, x.Stage)
		}
	}
	return out
}

// Sequence returns every exec as "config", "prepare", "run:<stage>" or
// "cleanup", in order.
func (r *Result) Sequence() []string {
	var out []string
	for _, x := range r.Execs {
		if x.Kind == ExecRun {
			out = append(out, "run:"+x.Stage)
		} else {
			out = append(out, string(x.Kind))
		}
	}
	return out
}

// Exec returns the last exec for a run stage (either the sent name or the
// runner's build stage name), or nil.
func (r *Result) Exec(stage string) *Exec {
	for i := len(r.Execs) - 1; i >= 0; i-- {
		x := &r.Execs[i]
		if x.Kind == ExecRun && (x.Stage == stage || x.BuildStage == stage) {
			return x
		}
	}
	return nil
}

// ExecsOf returns all execs of one kind.
func (r *Result) ExecsOf(kind ExecKind) []Exec {
	var out []Exec
	for _, x := range r.Execs {
		if x.Kind == kind {
			out = append(out, x)
		}
	}
	return out
}
