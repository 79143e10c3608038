package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"

	"gitlab.com/gitlab-org/gitlab-runner/executors/custom/api"
)

// attempt is one executor instance: one Prepare try with its own <tmp>.
type attempt struct {
	n        int
	tmpDir   string
	jobEnv   map[string]string
	hostname string
	dirs     buildState // buildsDir and projectDir; status comes from build
	cacheDir string
}

// vars are all job variables as this attempt currently sees them.
func (b *build) vars(a *attempt) variables {
	st := a.dirs
	st.status = b.currentStatus()
	image := gitlabVariables(b.job, b.e.RunnerURL).expandValue(b.job.Image.Name, "")
	return b.e.allVariables(b.job, st, image)
}

func (b *build) env(a *attempt) []string {
	vars := b.vars(a)
	return execEnv(b.baseEnv(), a.tmpDir, a.jobEnv, vars, ciJobServices(b.job.Services, vars, a.dirs.tmpProjectDir()))
}

func (b *build) hookArgs(hook string, extra ...string) []string {
	args := append(append([]string{}, b.e.Args...), hook)
	return append(args, extra...)
}

// prepare is retryCreateExecutor: up to PrepareAttempts tries, each with a
// fresh <tmp>, cleanup after every failed try, no retry after a build or
// configuration error or once the job context has ended.
func (b *build) prepare(ctx context.Context) (*attempt, error) {
	attempts := b.e.PrepareAttempts
	if attempts <= 0 {
		attempts = 3
	}
	interval := orDuration(b.e.PrepareRetryInterval, 3*time.Second)
	var err error
	for n := 1; n <= attempts; n++ {
		var a *attempt
		a, err = b.prepareAttempt(ctx, n)
		if err == nil {
			return a, nil
		}
		if a != nil {
			b.cleanup(a)
		}
		var be *BuildError
		var ce *ConfigError
		if errors.As(err, &be) || errors.As(err, &ce) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		b.log.Errorln("Preparation failed: " + err.Error())
		b.log.Println(fmt.Sprintf("Will be retried in %s ...", interval))
		select {
		case <-time.After(interval):
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	return nil, err
}

// prepareAttempt is executor.Prepare: make <tmp>, write response.json,
// config_exec, compute the directories, prepare_exec.
func (b *build) prepareAttempt(ctx context.Context, n int) (*attempt, error) {
	root := b.e.TempRoot
	if root == "" {
		root = os.TempDir()
	}
	tmp, err := os.MkdirTemp(root, "custom-executor*")
	if err != nil {
		return nil, err
	}
	a := &attempt{n: n, tmpDir: tmp}
	b.mu.Lock()
	b.res.TempDirs = append(b.res.TempDirs, tmp)
	b.res.TempDir = tmp
	b.mu.Unlock()

	if err := b.e.writeJobResponse(filepath.Join(tmp, JobResponseFileName), b.job); err != nil {
		return a, err
	}
	cfg, err := b.configExec(ctx, a)
	if err != nil {
		return a, err
	}
	if err := b.applyConfig(a, cfg); err != nil {
		return a, err
	}

	pctx, cancel := context.WithTimeout(ctx, orDuration(b.e.PrepareExecTimeout, time.Hour))
	defer cancel()
	out, errOut := b.log.stream(), b.log.stream()
	x := b.exec(pctx, execRequest{kind: ExecPrepare, attempt: n, args: b.hookArgs("prepare"),
		tmpDir: tmp, env: b.env(a), stdout: out, stderr: errOut})
	_, _ = out.Close(), errOut.Close()
	return a, x.Err
}

// configExec runs config_exec; stdout is captured and parsed, stderr goes
// to the job log.
func (b *build) configExec(ctx context.Context, a *attempt) (*api.ConfigExecOutput, error) {
	cctx, cancel := context.WithTimeout(ctx, orDuration(b.e.ConfigExecTimeout, time.Hour))
	defer cancel()
	var stdout lockedBuffer
	errOut := b.log.stream()
	x := b.exec(cctx, execRequest{kind: ExecConfig, attempt: a.n, args: b.hookArgs("config"),
		tmpDir: a.tmpDir, env: b.env(a), stdout: &stdout, stderr: errOut})
	_ = errOut.Close()
	if x.Err != nil {
		return nil, x.Err
	}
	raw := []byte(stdout.String())
	if len(raw) == 0 {
		return nil, nil
	}
	cfg := &api.ConfigExecOutput{}
	if err := json.Unmarshal(raw, cfg); err != nil {
		return nil, fmt.Errorf("error while parsing JSON output: %w", err)
	}
	b.mu.Lock()
	b.res.Config = cfg
	b.mu.Unlock()
	return cfg, nil
}

// applyConfig is ConfigExecOutput.InjectInto plus StartBuild's directory
// computation.
func (b *build) applyConfig(a *attempt, cfg *api.ConfigExecOutput) error {
	buildsDir, cacheDir, shared := b.e.BuildsDir, b.e.CacheDir, false
	if cfg == nil {
		cfg = &api.ConfigExecOutput{}
	}
	if cfg.BuildsDir != nil {
		buildsDir = *cfg.BuildsDir
	}
	if cfg.CacheDir != nil {
		cacheDir = *cfg.CacheDir
	}
	if cfg.BuildsDirIsShared != nil {
		shared = *cfg.BuildsDirIsShared
	}
	if cfg.JobEnv != nil {
		a.jobEnv = *cfg.JobEnv
	}
	a.hostname, _ = os.Hostname()
	if cfg.Hostname != nil {
		a.hostname = *cfg.Hostname
	}

	usage := "Using Custom executor"
	if d := cfg.Driver; d != nil && d.Name != nil {
		usage += " with driver " + *d.Name
		if d.Version != nil {
			usage += " " + *d.Version
		}
	}
	b.log.Println(usage + "...")

	if cfg.Shell != nil && *cfg.Shell != "" && *cfg.Shell != "bash" && *cfg.Shell != "sh" {
		return &ConfigError{Msg: fmt.Sprintf("shell %q is not supported by the runner emulator", *cfg.Shell)}
	}
	if buildsDir == "" {
		return &ConfigError{Msg: "the builds_dir is not configured"}
	}
	if cacheDir == "" {
		return &ConfigError{Msg: "the cache_dir is not configured"}
	}
	pd := path.Join(buildsDir, b.job.ProjectPath)
	if shared {
		pd = path.Join(buildsDir, b.e.ShortToken, strconv.Itoa(b.e.ConcurrentProjectID), b.job.ProjectPath)
	}
	a.dirs = buildState{buildsDir: buildsDir, projectDir: pd}
	a.cacheDir = path.Join(cacheDir, b.job.ProjectPath)
	b.mu.Lock()
	b.res.BuildsDir, b.res.CacheDir, b.res.ProjectDir = buildsDir, a.cacheDir, pd
	b.mu.Unlock()
	return nil
}

// cleanup is executor.Cleanup: cleanup_exec with its own context (not the
// job's), output to the runner log only, then RemoveAll(<tmp>).
func (b *build) cleanup(a *attempt) {
	defer func() { _ = os.RemoveAll(a.tmpDir) }()
	ctx, cancel := context.WithTimeout(context.Background(), orDuration(b.e.CleanupExecTimeout, time.Hour))
	defer cancel()
	x := b.exec(ctx, execRequest{kind: ExecCleanup, attempt: a.n, args: b.hookArgs("cleanup"),
		tmpDir: a.tmpDir, env: b.env(a), stdout: b.runnerLog, stderr: b.runnerLog})
	if x.Err != nil {
		b.log.Warningln("Cleanup script failed: " + x.Err.Error())
	}
}

// exec runs one driver invocation, records it and fires the cancel
// triggers and start hooks that match it.
func (b *build) exec(ctx context.Context, req execRequest) Exec {
	var timers []*time.Timer
	running := make(chan struct{})
	req.started = func(pid int) {
		for i, t := range b.rc.triggers {
			if !t.matches(req.kind, req.stage, req.buildStage) || !b.claimTrigger(i) {
				continue
			}
			timers = append(timers, time.AfterFunc(t.after, func() {
				select {
				case <-running:
					return // already finished
				default:
				}
				b.fireTrigger(i, t)
			}))
		}
		info := Exec{Kind: req.kind, Attempt: req.attempt, Stage: req.stage, BuildStage: req.buildStage,
			Argv: append([]string{b.e.Binary}, req.args...), ScriptPath: req.scriptPath, TempDir: req.tmpDir}
		for _, f := range b.rc.onStart {
			f(info, pid)
		}
	}
	x := b.e.runExec(ctx, req)
	close(running)
	for _, t := range timers {
		t.Stop()
	}
	b.addExec(x)
	return x
}
