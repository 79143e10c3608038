package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// cancelAfter is how long the stage runs before the user cancels it.
const cancelAfter = time.Second

// execDriver is the baseline of row 8: the simplest custom-executor driver
// one could write with the docker CLI: one container per job, each stage a
// `docker exec -i … bash` of the runner's script, `docker rm -f` at
// cleanup. It has no daemon, no TLS and no audit: the floor of a driver.
const execDriver = `#!/bin/sh
name="bench-execdriver-$(basename "$TMPDIR")"
case "$1" in
config) echo '{"builds_dir":"/builds","cache_dir":"/cache","builds_dir_is_shared":false}' ;;
prepare) exec docker run -d --name "$name" --label "$BENCH_LABEL" --network none "$BENCH_IMAGE" sleep infinity >/dev/null ;;
run) exec docker exec -i "$name" bash < "$2" ;;
cleanup) exec docker rm -f "$name" >/dev/null ;;
esac
`

// cancelSection: row 8, a user's cancel while `sleep 300` runs, to the
// runner's exit with cleanup done, through dind-executor and through the
// hand-written docker exec driver.
func cancelSection(ctx context.Context, b *bench, rep *Report) error {
	if !b.opts.wants("cancel") {
		return nil
	}
	driver, err := b.writeExecDriver()
	if err != nil {
		return err
	}
	project := b.inv.newProject("cancel")
	var ours, theirs []float64
	for i := range b.opts.heavyRuns() {
		b.log.printf("cancel %d/%d: dind-executor, then a docker exec driver", i+1, b.opts.heavyRuns())
		job := b.job(project, "sleep 300")
		job.GitStrategy = "none"
		d, err := cancelToExit(ctx, b.product.emulator(b.product.configPath), job)
		if err != nil {
			return fmt.Errorf("dind-executor: %w", err)
		}
		ours = append(ours, seconds(d))
		base := b.job(project, "sleep 300")
		base.GitStrategy = "none"
		e := &runner.Emulator{Binary: driver, PrepareAttempts: 1, TempRoot: b.product.work}
		if d, err = cancelToExit(ctx, e, base); err != nil {
			return fmt.Errorf("docker exec driver: %w", err)
		}
		theirs = append(theirs, seconds(d))
	}
	o, t := summarize(ours), summarize(theirs)
	rep.Rows = append(rep.Rows, Row{
		Section: "8", Key: "cancel_to_exit", Name: "cancel during a stage → runner exits, cleanup done", Unit: "s",
		Product: o, Baseline: t, BaselineKey: "B8",
		Target: "≤ 2× the baseline", Met: boolPtr(o != nil && t != nil && o.Median <= 2*t.Median),
	})
	rep.Baselines = append(rep.Baselines, Baseline{Key: "B8",
		Description: "a hand-written custom-executor driver: one container of the job image per job (`docker run -d … sleep infinity`), each stage `docker exec -i <container> bash < script`, `docker rm -f` at cleanup; the same job and cancel through the same runner emulator"})
	return nil
}

// cancelToExit runs job, cancels it cancelAfter into build_script as a user
// does, and returns the time from the cancel to the end of the last hook.
func cancelToExit(ctx context.Context, e *runner.Emulator, job runner.Job) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	res, err := e.Run(ctx, job, runner.CancelDuringStage("build_script", cancelAfter))
	if err != nil {
		return 0, err
	}
	if res.Outcome.Kind != runner.OutcomeCanceled || !res.CancelFired[0] {
		return 0, fmt.Errorf("job %d: outcome %s, want canceled\n%s", job.ID, res.Outcome, lastLines(runner.PlainText(res.Log), 30))
	}
	var cancelAt, end time.Time
	for _, x := range res.Execs {
		if x.Stage == "build_script" {
			cancelAt = x.Started.Add(cancelAfter)
		}
		if last := x.Started.Add(x.Duration); last.After(end) {
			end = last
		}
	}
	if cancelAt.IsZero() {
		return 0, errors.New("no build_script stage ran")
	}
	return end.Sub(cancelAt), nil
}

// writeExecDriver writes the baseline driver with its image and label.
func (b *bench) writeExecDriver() (string, error) {
	path := filepath.Join(b.product.work, "execdriver.sh")
	script := strings.Replace(execDriver, "#!/bin/sh\n", fmt.Sprintf("#!/bin/sh\nBENCH_IMAGE=%s\nBENCH_LABEL=%s=%s\n", seedjob.JobImage, benchLabel, b.inv.tagString()), 1)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		return "", fmt.Errorf("write the docker exec driver: %w", err)
	}
	return path, nil
}
