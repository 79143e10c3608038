package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Emulator plays GitLab Runner (custom executor) against a driver binary.
// The zero value of every field but Binary is usable.
type Emulator struct {
	// Binary is the driver; it is config_exec, prepare_exec, run_exec and
	// cleanup_exec at once, with Args then the hook name as arguments:
	// Binary Args... config | prepare | run <script> <stage> | cleanup.
	Binary string
	Args   []string
	// Env is appended to the emulator's own environment for every exec
	// (the runner process's environment, e.g. DIND_EXECUTOR_CONFIG=…).
	Env []string

	// BuildsDir and CacheDir are config.toml's builds_dir / cache_dir, used
	// when config_exec does not set them.
	BuildsDir, CacheDir string

	RunnerVersion  string // CI_RUNNER_VERSION, default "19.4.0"
	RunnerRevision string // CI_RUNNER_REVISION, default "fc1f1862"
	// RunnerURL is [[runners]] url (CI_SERVER_URL, artifacts-uploader
	// --url). Empty, like the reference `exec` runs, skips the
	// upload_artifacts_* stages as the runner does.
	RunnerURL string
	// ShortToken is CI_RUNNER_SHORT_TOKEN (also part of the shared builds dir).
	ShortToken string
	// Environment is [[runners]] environment ("KEY=value").
	Environment []string
	// FeatureFlags are config.toml feature flags; they win over job variables.
	FeatureFlags map[string]bool
	// ConcurrentID and ConcurrentProjectID are CI_CONCURRENT_ID and
	// CI_CONCURRENT_PROJECT_ID.
	ConcurrentID, ConcurrentProjectID int

	// GracefulKillTimeout is the wait between SIGTERM and SIGKILL (default
	// 10s, like the runner's own integration tests; the runner's default is
	// 10 min). ForceKillTimeout is the wait after SIGKILL (default 10s).
	GracefulKillTimeout, ForceKillTimeout time.Duration
	// Exec timeouts (default 1h each, like the runner).
	ConfigExecTimeout, PrepareExecTimeout, CleanupExecTimeout time.Duration
	// PrepareAttempts (default 3) and PrepareRetryInterval (default 3s):
	// prepare retries after a non-build failure.
	PrepareAttempts      int
	PrepareRetryInterval time.Duration
	// BuildFinishTimeout is how long the runner waits for the running stage
	// after the job context ended before it runs cleanup anyway (default 5 min).
	BuildFinishTimeout time.Duration

	// TempRoot is where the per-job "custom-executor*" dir is made
	// (default os.TempDir()).
	TempRoot string
	// ScriptStyle selects the generated script shape (default StyleRunner15).
	ScriptStyle ScriptStyle

	// Log receives the job log live: section headers, prepare and run
	// output, warnings, the final status line (masked).
	Log io.Writer
	// RunnerLog receives cleanup_exec's output, which the runner only logs
	// in its own log.
	RunnerLog io.Writer
}

func orDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (e *Emulator) gracefulKillTimeout() time.Duration {
	return orDuration(e.GracefulKillTimeout, 10*time.Second)
}
func (e *Emulator) forceKillTimeout() time.Duration {
	return orDuration(e.ForceKillTimeout, 10*time.Second)
}

func (e *Emulator) runnerVersion() string {
	if e.RunnerVersion != "" {
		return e.RunnerVersion
	}
	return "19.4.0"
}

func (e *Emulator) runnerRevision() string {
	if e.RunnerRevision != "" {
		return e.RunnerRevision
	}
	return "fc1f1862"
}

var (
	// ErrJobCanceled is the cause when the job was cancelled by a user.
	ErrJobCanceled = errors.New("canceled")
	// ErrJobAborted is the cause when the job was aborted (AbortDuringStage).
	ErrJobAborted = errors.New("aborted")
	// ErrScriptTimeout is RUNNER_SCRIPT_TIMEOUT expiring.
	ErrScriptTimeout = errors.New("script timeout exceeded")
)

// Run runs one job through the driver, from config_exec to cleanup_exec,
// and returns what happened. The error is only for problems of the emulator
// itself (no binary, temp dir not creatable); job failures are in
// Result.Outcome.
func (e *Emulator) Run(ctx context.Context, job Job, opts ...RunOption) (*Result, error) {
	if e.Binary == "" {
		return nil, errors.New("runner emulator: Binary is not set")
	}
	job = job.withDefaults()
	b := &build{
		e: e, job: job, rc: newRunConfig(opts),
		res:       &Result{},
		log:       newJobLog(e.Log),
		runnerLog: &lockedBuffer{out: e.RunnerLog},
		status:    "running",
	}
	b.res.CancelFired = make([]bool, len(b.rc.triggers))
	b.log.setMasker(newMasker(maskedValues(gitlabVariables(job, e.RunnerURL)),
		append(append([]string{}, defaultTokenPrefixes...), job.TokenMaskPrefixes...)))

	timeout := time.Duration(job.Timeout) * time.Second
	if b.rc.jobTimeout > 0 {
		timeout = b.rc.jobTimeout
	}
	baseCtx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	jobCtx, cancelTimeout := context.WithTimeout(baseCtx, timeout)
	defer cancelTimeout()
	b.abort = abort
	b.cancel = func() { abort(ErrJobCanceled) }

	b.log.Println(fmt.Sprintf("Running with gitlab-runner %s (%s)", e.runnerVersion(), e.runnerRevision()))
	b.log.Println("  on runner-emulator " + e.ShortToken)

	var err error
	var a *attempt
	b.log.section("prepare_executor", `Preparing the "custom" executor`, func() {
		a, err = b.prepare(jobCtx)
	})
	if err == nil {
		err = b.runScripts(jobCtx, a)
		b.cleanup(a)
	}

	outcome := outcomeOf(jobCtx, err, timeout)
	b.logOutcome(outcome)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.res.Outcome = outcome
	b.res.Log = b.log.String()
	b.res.RunnerLog = b.runnerLog.String()
	return b.res, nil
}

// runScripts runs the stages in a goroutine, like Build.run: once the job
// context ends, it waits at most BuildFinishTimeout for the running stage.
func (b *build) runScripts(jobCtx context.Context, a *attempt) error {
	done := make(chan error, 1)
	go func() { done <- b.executeScript(jobCtx, a) }()
	select {
	case err := <-done:
		return err
	case <-jobCtx.Done():
	}
	select {
	case err := <-done:
		return err
	case <-time.After(orDuration(b.e.BuildFinishTimeout, 5*time.Minute)):
		b.log.Warningln("Timed out waiting for the build to finish")
		return jobCtx.Err()
	}
}

func maskedValues(vs variables) []string {
	var out []string
	for _, v := range vs {
		if v.Masked {
			out = append(out, v.Value)
		}
	}
	return out
}

// outcomeOf is the job's final state (Build.run, runtimeStateAndError).
func outcomeOf(jobCtx context.Context, err error, timeout time.Duration) Outcome {
	var be *BuildError
	var ce *ConfigError
	switch {
	case jobCtx.Err() != nil && errors.Is(context.Cause(jobCtx), context.DeadlineExceeded):
		return Outcome{Kind: OutcomeTimedOut, Message: fmt.Sprintf("execution took longer than %v seconds", timeout)}
	case jobCtx.Err() != nil:
		return Outcome{Kind: OutcomeCanceled, Message: context.Cause(jobCtx).Error()}
	case err == nil:
		return Outcome{Kind: OutcomeSuccess}
	case errors.As(err, &ce):
		return Outcome{Kind: OutcomeConfigError, Message: ce.Error()}
	case errors.Is(err, ErrJobCanceled):
		return Outcome{Kind: OutcomeCanceled, Message: err.Error()}
	case errors.Is(err, ErrScriptTimeout):
		return Outcome{Kind: OutcomeTimedOut, Message: err.Error()}
	case errors.As(err, &be):
		return Outcome{Kind: OutcomeBuildFailure, ExitCode: be.ExitCode, Message: err.Error()}
	}
	return Outcome{Kind: OutcomeSystemFailure, Message: err.Error()}
}

func (b *build) logOutcome(o Outcome) {
	switch o.Kind {
	case OutcomeSuccess:
		b.log.Noticeln("Job succeeded")
	case OutcomeBuildFailure:
		b.log.Errorln(fmt.Sprintf("Job failed: exit code %d", o.ExitCode))
	case OutcomeSystemFailure:
		b.log.Errorln("Job failed (system failure): " + o.Message)
	default:
		b.log.Errorln("Job failed: " + o.Message)
	}
}

// build is the state of one Run.
type build struct {
	e   *Emulator
	job Job
	rc  runConfig

	mu        sync.Mutex // guards res, status, cancel
	res       *Result
	status    string // CI_JOB_STATUS
	cancel    func() // the user-cancel hook; single use
	cancelled bool
	abort     context.CancelCauseFunc
	claimed   map[int]bool // triggers already bound to an exec

	log       *jobLog
	runnerLog *lockedBuffer
}

func (b *build) setStatus(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status = s
}

func (b *build) currentStatus() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status
}

func (b *build) setCancel(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cancel = f
}

// userCancel is the trace's cancel hook: it works once.
func (b *build) userCancel() {
	b.mu.Lock()
	f := b.cancel
	used := b.cancelled
	b.cancelled = true
	b.mu.Unlock()
	if !used && f != nil {
		f()
	}
}

func (b *build) addExec(x Exec) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.res.Execs = append(b.res.Execs, x)
}

func (b *build) addSkipped(stage string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.res.Skipped = append(b.res.Skipped, stage)
}

// baseEnv is the runner process's environment.
func (b *build) baseEnv() []string { return append(os.Environ(), b.e.Env...) }
