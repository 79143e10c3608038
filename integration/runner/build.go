package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func (b *build) claimTrigger(i int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.claimed == nil {
		b.claimed = map[int]bool{}
	}
	if b.claimed[i] {
		return false
	}
	b.claimed[i] = true
	return true
}

func (b *build) fireTrigger(i int, t trigger) {
	b.mu.Lock()
	b.res.CancelFired[i] = true
	b.mu.Unlock()
	if t.kind == triggerAbort {
		b.abort(ErrJobAborted)
		return
	}
	b.userCancel()
}

// executeScript is Build.executeScript: the stages after a successful
// Prepare, in the runner's order and with its stop rules.
func (b *build) executeScript(ctx context.Context, a *attempt) error {
	if err := b.stage(ctx, a, StagePrepareScript); err != nil {
		return fmt.Errorf("prepare environment: %w", err)
	}

	err := b.attemptStage(ctx, a, StageGetSources, "GET_SOURCES_ATTEMPTS", func(n int) error {
		if n == 1 {
			return b.stage(ctx, a, StageClearWorktree)
		}
		return nil
	})
	if err == nil {
		err = b.attemptStage(ctx, a, StageRestoreCache, "RESTORE_CACHE_ATTEMPTS", nil)
	}
	if err == nil {
		err = b.attemptStage(ctx, a, StageDownloadArtifacts, "ARTIFACT_DOWNLOAD_ATTEMPTS", nil)
	}
	if err == nil {
		err = b.userScripts(ctx, a)
	}

	archive, upload := StageArchiveCache, StageUploadArtifactsOnSuccess
	if err != nil {
		archive, upload = StageArchiveCacheOnFailure, StageUploadArtifactsOnFailure
	}
	archiveErr := b.stage(ctx, a, archive)
	uploadErr := b.stage(ctx, a, upload)
	// pickPriorityError: the job's own error first, then archive, then upload.
	for _, e := range []error{archiveErr, uploadErr} {
		if err == nil {
			err = e
		}
	}

	if cerr := b.stage(ctx, a, StageCleanupFileVariables); cerr != nil {
		b.log.Warningln("Error while executing file based variables removal script: " + cerr.Error())
	}
	return err
}

// attemptStage runs a stage up to <variable> times (1–10, default 1),
// retrying on any error; retryCallback(n) runs before attempt n+1.
func (b *build) attemptStage(ctx context.Context, a *attempt, stage, variable string, retryCallback func(n int) error) error {
	attempts, _ := strconv.Atoi(b.vars(a).Value(variable))
	attempts = max(1, min(10, attempts))
	var err error
	for n := 0; n < attempts; n++ {
		if n > 0 && retryCallback != nil {
			if err = retryCallback(n); err != nil {
				return err
			}
		}
		if err = b.stage(ctx, a, stage); err == nil {
			return nil
		}
	}
	return err
}

// userScripts is executeUserScripts: the script steps under the script
// context (the user-cancel target), then after_script with CI_JOB_STATUS.
func (b *build) userScripts(ctx context.Context, a *attempt) error {
	scriptCtx, cancel := b.timeoutCtx(ctx, a, "RUNNER_SCRIPT_TIMEOUT", 0)
	defer cancel()
	b.setCancel(cancel)

	var err error
	for _, s := range jobSteps(b.job) {
		if s.Name == "after_script" {
			continue
		}
		if err = b.stage(scriptCtx, a, stepStage(s.Name)); err != nil {
			break
		}
	}
	switch {
	case ctx.Err() == nil && errors.Is(scriptCtx.Err(), context.Canceled):
		err = ErrJobCanceled
		b.log.Warningln("script canceled externally (UI, API)")
	case !errors.Is(ctx.Err(), context.DeadlineExceeded) && errors.Is(scriptCtx.Err(), context.DeadlineExceeded):
		err = fmt.Errorf("%w: %w", ErrScriptTimeout, scriptCtx.Err())
	}

	afterCtx, cancelAfter := b.timeoutCtx(ctx, a, "RUNNER_AFTER_SCRIPT_TIMEOUT", 5*time.Minute)
	defer cancelAfter()
	b.setStatus(runtimeState(err))
	if aerr := b.stage(afterCtx, a, StageAfterScript); aerr != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		if b.vars(a).Value("AFTER_SCRIPT_IGNORE_ERRORS") != "false" {
			b.log.Warningln("after_script failed, but job will continue unaffected: " + aerr.Error())
		} else if err == nil {
			err = aerr
		}
	}
	return err
}

// timeoutCtx derives a stage-group context from a duration variable.
func (b *build) timeoutCtx(ctx context.Context, a *attempt, variable string, def time.Duration) (context.Context, context.CancelFunc) {
	d := def
	if raw := strings.TrimSpace(b.vars(a).Value(variable)); raw != "" {
		if v, err := time.ParseDuration(raw); err == nil && v > 0 {
			d = v
		} else {
			b.log.Warningln(fmt.Sprintf("Ignoring malformed %s timeout: %v", variable, raw))
		}
	}
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// runtimeState is CI_JOB_STATUS for after_script and later stages.
func runtimeState(err error) string {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, ErrJobCanceled), errors.Is(err, ErrJobAborted):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrScriptTimeout):
		return "timedout"
	case err == nil:
		return "success"
	}
	return "failed"
}

// stage is executeStage + executor.Run: skip when the context has ended or
// the script would be empty, else write the script and call run_exec inside
// the stage's log section.
func (b *build) stage(ctx context.Context, a *attempt, stage string) error {
	st := a.dirs
	st.status = b.currentStatus()
	script, err := generateScript(stage, scriptInfo{
		job: b.job, vars: b.vars(a), st: st, cacheDir: a.cacheDir, hostname: a.hostname,
		style: b.e.ScriptStyle, runnerURL: b.e.RunnerURL,
		userAgent: fmt.Sprintf("gitlab-runner %s linux/amd64", b.e.runnerVersion()),
	})
	if ctx.Err() != nil { // the runner checks this first; Skipped only lists stages that had work
		if !errors.Is(err, errSkipStage) {
			b.addSkipped(stage)
		}
		return context.Cause(ctx)
	}
	if errors.Is(err, errSkipStage) {
		return nil
	}
	if err != nil {
		return err
	}

	b.log.section(stage, stageDescription(stage), func() {
		err = b.runStage(ctx, a, stage, script)
	})
	return err
}

func (b *build) runStage(ctx context.Context, a *attempt, stage, script string) error {
	dir, err := os.MkdirTemp(a.tmpDir, "script")
	if err != nil {
		return err
	}
	file := filepath.Join(dir, "script")
	if err := os.WriteFile(file, []byte(script), 0o700); err != nil {
		return err
	}
	sent := stage
	if stage == StageStepScript {
		sent = b.rc.userStage
		if sent == StageBuildScript {
			b.log.Warningln("Starting with version 17.0 the 'build_script' stage will be replaced with " +
				"'step_script': https://gitlab.com/groups/gitlab-org/-/epics/6112")
		}
	}
	out, errOut := b.log.stream(), b.log.stream()
	defer func() { _, _ = out.Close(), errOut.Close() }()
	x := b.exec(ctx, execRequest{kind: ExecRun, attempt: a.n, stage: sent, buildStage: stage,
		args: b.hookArgs("run", file, sent), scriptPath: file, tmpDir: a.tmpDir, env: b.env(a),
		stdout: out, stderr: errOut})
	return x.Err
}
