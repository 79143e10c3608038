package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// HookAttempt is one prepare attempt set up the way Run sets it up: its own
// "custom-executor*" temp dir holding JOB_RESPONSE_FILE, config_exec run and
// its output applied. It is for callers that start single hooks themselves
// (to time one process and read its rusage, say) where Run would run the
// whole job; the hooks get the same argv, cwd and environment as under Run.
type HookAttempt struct {
	// TempDir is <tmp>: every hook's cwd, where response.json and the
	// stage scripts live.
	TempDir string
	// Env is every hook's environment, as Run gives it to prepare_exec.
	Env []string

	binary   string
	args     func(hook string, extra ...string) []string
	killWait time.Duration // SIGTERM to giving up, as GracefulKillTimeout
}

// NewHookAttempt makes the attempt's temp dir under TempRoot, writes the
// job response and runs config_exec, like the first half of a prepare
// attempt. Call Remove when done (after the cleanup hook).
func (e *Emulator) NewHookAttempt(ctx context.Context, job Job) (*HookAttempt, error) {
	if e.Binary == "" {
		return nil, errors.New("runner emulator: Binary is not set")
	}
	b := &build{
		e: e, job: job.withDefaults(), rc: newRunConfig(nil),
		res: &Result{}, log: newJobLog(e.Log), runnerLog: &lockedBuffer{out: e.RunnerLog},
		status: "running",
	}
	root := e.TempRoot
	if root == "" {
		root = os.TempDir()
	}
	tmp, err := os.MkdirTemp(root, "custom-executor*")
	if err != nil {
		return nil, fmt.Errorf("hook attempt temp dir: %w", err)
	}
	a := &attempt{n: 1, tmpDir: tmp}
	fail := func(what string, err error) (*HookAttempt, error) {
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("hook attempt: %s: %w", what, err)
	}
	if err := e.writeJobResponse(filepath.Join(tmp, JobResponseFileName), b.job); err != nil {
		return fail("write the job response", err)
	}
	cfg, err := b.configExec(ctx, a)
	if err != nil {
		return fail("config_exec", err)
	}
	if err := b.applyConfig(a, cfg); err != nil {
		return fail("apply config_exec's output", err)
	}
	return &HookAttempt{TempDir: tmp, Env: b.env(a), binary: e.Binary, args: b.hookArgs, killWait: e.gracefulKillTimeout()}, nil
}

// JobResponseFile is the attempt's JOB_RESPONSE_FILE.
func (h *HookAttempt) JobResponseFile() string { return filepath.Join(h.TempDir, JobResponseFileName) }

// Command is the driver exec for hook ("prepare", "run", "cleanup", ...)
// with extra arguments (run: the script path and the stage), set up as the
// runner starts it: cwd <tmp>, the attempt's environment, stdin /dev/null,
// a process group of its own that gets SIGTERM when ctx ends. The caller
// sets Stdout and Stderr, then starts and waits for it.
func (h *HookAttempt) Command(ctx context.Context, hook string, extra ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, h.binary, h.args(hook, extra...)...)
	cmd.Dir, cmd.Env = h.TempDir, h.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = h.killWait
	return cmd
}

// WriteScript stores a stage script where the runner writes its own
// (<tmp>/script<random>/script, mode 0700) and returns its path.
func (h *HookAttempt) WriteScript(body string) (string, error) {
	dir, err := os.MkdirTemp(h.TempDir, "script")
	if err != nil {
		return "", fmt.Errorf("script dir: %w", err)
	}
	path := filepath.Join(dir, "script")
	if err := os.WriteFile(path, []byte(body), 0o700); err != nil {
		return "", fmt.Errorf("write script: %w", err)
	}
	return path, nil
}

// Remove deletes the temp dir, as the runner does after cleanup_exec.
func (h *HookAttempt) Remove() error { return os.RemoveAll(h.TempDir) }
