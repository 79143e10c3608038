package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/stages"
)

// Streams are the process's output streams; tests pass buffers.
type Streams struct {
	Out io.Writer
	Err io.Writer
}

// options holds the flags shared by every subcommand.
type options struct {
	configPath string
}

// Run is everything main does but os.Exit: it parses args, runs the hook
// and returns the exit code the runner expects.
func Run(args []string, streams Streams, getenv func(string) string) int {
	ctx, stop := signalContext()
	defer stop()

	env := stages.ReadRunnerEnv(getenv)
	var hookErr error
	opts := &options{}
	root := newRootCommand(opts, streams, func(hook func(*stages.Hooks) error) error {
		h, err := newHooks(opts, streams, env, getenv)
		if err == nil {
			err = hook(h)
		}
		hookErr = err
		return nil
	}, ctx)
	root.AddCommand(operatorCommands(opts, streams, getenv)...)
	root.SetArgs(args)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	if err := root.ExecuteContext(ctx); err != nil {
		// Usage errors: cobra has printed the usage; this is not a job's fault.
		fmt.Fprintf(streams.Err, "ERROR: %v\n", err)
		return env.SystemFailureExitCode
	}
	return exitCode(hookErr, env, streams.Err)
}

// exitCode reports err on stderr (the job log, for prepare and run) and
// maps it to the runner's exit codes.
func exitCode(err error, env stages.RunnerEnv, stderr io.Writer) int {
	code, werr := stages.ExitCode(err, env)
	var build *stages.BuildFailure
	switch {
	case err == nil:
	case errors.As(err, &build):
		// The script's own output already says why; the runner prints the code.
	default:
		fmt.Fprintf(stderr, "ERROR: dind-executor: %v\n", err)
	}
	if werr != nil {
		fmt.Fprintf(stderr, "ERROR: dind-executor: %v\n", werr)
	}
	return code
}

// signalContext is cancelled by SIGTERM or SIGINT, the runner's way to stop
// a hook; the cause records which signal arrived.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-signals:
			cancel(fmt.Errorf("received %s", sig))
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(signals)
		close(done)
		cancel(nil)
	}
}

// newHooks loads the operator's config and wires the hooks to the Engine.
func newHooks(opts *options, streams Streams, env stages.RunnerEnv, getenv func(string) string) (*stages.Hooks, error) {
	o, err := loadOperatorEnv(opts, streams, getenv)
	if err != nil {
		return nil, err
	}
	return &stages.Hooks{
		Config:   o.cfg,
		Env:      env,
		Hostname: o.hostname,
		Version:  version,
		Stdout:   streams.Out,
		Stderr:   streams.Err,
		Log:      o.log,
		Connect: func() (stages.Engine, error) {
			return executor.Connect(o.engineOptions())
		},
		RefillPool: refillInBackground(opts.configPath, getenv),
	}, nil
}

func newRootCommand(opts *options, streams Streams, runHook func(func(*stages.Hooks) error) error, ctx context.Context) *cobra.Command {
	root := &cobra.Command{
		Use:           "dind-executor",
		Short:         "GitLab Runner custom executor: one mutual-TLS Docker-in-Docker sandbox per job",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&opts.configPath, "config", "",
		"config file (default: $DIND_EXECUTOR_CONFIG, else /etc/dind-executor/config.toml, else built-in defaults)")
	root.AddCommand(
		&cobra.Command{
			Use:   "config",
			Short: "config_exec hook: print the runner's JSON (builds_dir, cache_dir, driver)",
			Args:  cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error {
				return runHook(func(h *stages.Hooks) error { return h.ConfigHook() })
			},
		},
		&cobra.Command{
			Use:   "prepare",
			Short: "prepare_exec hook: create the job's sandbox and wait for its TLS daemon",
			Args:  cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error {
				return runHook(func(h *stages.Hooks) error { return h.PrepareHook(ctx) })
			},
		},
		&cobra.Command{
			Use:   "run <script-path> <stage>",
			Short: "run_exec hook: run one stage script in the sandbox",
			Args:  cobra.ExactArgs(2),
			RunE: func(_ *cobra.Command, args []string) error {
				return runHook(func(h *stages.Hooks) error { return h.RunHook(ctx, args[0], args[1]) })
			},
		},
		&cobra.Command{
			Use:   "cleanup",
			Short: "cleanup_exec hook: remove everything of the job's sandbox (idempotent, like rm -f)",
			Args:  cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error {
				return runHook(func(h *stages.Hooks) error { return h.CleanupHook(ctx) })
			},
		},
		&cobra.Command{
			Use:   "version",
			Short: "print the version",
			Args:  cobra.NoArgs,
			Run: func(*cobra.Command, []string) {
				fmt.Fprintf(streams.Out, "dind-executor %s\n", version)
			},
		},
		relayCommand(ctx),
	)
	return root
}
