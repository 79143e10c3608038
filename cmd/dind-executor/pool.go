package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/spf13/cobra"

	"gitlab.com/dind-executor/dind-executor/config"
	"gitlab.com/dind-executor/dind-executor/executor"
)

// newPoolCommand manages the warm pool ([pool] size in the config).
func newPoolCommand(load func() (*operatorEnv, error), streams Streams) *cobra.Command {
	pool := &cobra.Command{
		Use:   "pool",
		Short: "manage the warm pool of daemons started ahead of jobs ([pool] size)",
	}
	pool.AddCommand(
		&cobra.Command{
			Use:   "fill",
			Short: "start daemons until [pool] size are ready (prepare runs this in the background)",
			Args:  cobra.NoArgs,
			RunE: runWithEngine(load, func(ctx context.Context, o *operatorEnv, engine *executor.Engine) error {
				started, err := engine.FillPool(ctx, streams.Out)
				if n := len(o.cfg.Engine.Endpoints()); n > 1 {
					fmt.Fprintf(streams.Out, "started %d pooled daemons (pool size %d on each of %d Engines)\n", started, o.cfg.Pool.Size, n)
				} else {
					fmt.Fprintf(streams.Out, "started %d pooled daemons (pool size %d)\n", started, o.cfg.Pool.Size)
				}
				return err
			}),
		},
		&cobra.Command{
			Use:   "drain",
			Short: "remove every pooled daemon no job has taken (e.g. after changing the daemon settings)",
			Args:  cobra.NoArgs,
			RunE: runWithEngine(load, func(ctx context.Context, _ *operatorEnv, engine *executor.Engine) error {
				removed, err := engine.DrainPool(ctx)
				fmt.Fprintf(streams.Out, "removed %s\n", removed)
				return err
			}),
		},
	)
	return pool
}

// refillInBackground starts `dind-executor pool fill` in its own session,
// so neither the runner's kill of the hook's process group nor the hook's
// exit stops it, and does not wait for it. The child gets only the
// variables that locate the config and the Engine: the hook's environment
// holds the job's variables (CUSTOM_ENV_*, the job token among them),
// which a process that outlives the job must not carry.
func refillInBackground(configPath string, getenv func(string) string) func() error {
	return func() error {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find this binary to refill the pool: %w", err)
		}
		args := []string{"pool", "fill"}
		if configPath != "" {
			args = append([]string{"--config", configPath}, args...)
		}
		cmd := exec.Command(self, args...)
		cmd.Env = refillEnv(getenv)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start pool refill: %w", err)
		}
		return cmd.Process.Release()
	}
}

// refillEnv is all a background refill inherits: where the config and the
// Engine are.
func refillEnv(getenv func(string) string) []string {
	env := []string{}
	for _, k := range []string{"PATH", "HOME", config.EnvVar, logLevelEnv, "DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION"} {
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}
