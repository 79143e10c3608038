package main

import (
	"context"
	"fmt"
	"os"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"gitlab.com/dind-executor/dind-executor/config"
	"gitlab.com/dind-executor/dind-executor/executor"
)

// operatorEnv is what every command shares: the config, the log and this
// host's name. The operator commands (ps, audit, gc, pool) read no runner
// variables; the hooks add them.
type operatorEnv struct {
	cfg      config.Config
	log      *logrus.Logger
	hostname string
}

func loadOperatorEnv(opts *options, streams Streams, getenv func(string) string) (*operatorEnv, error) {
	cfg, _, err := config.LoadResolved(opts.configPath)
	if err != nil {
		return nil, err
	}
	log, err := newLogger(cfg.Log, streams.Err, getenv(logLevelEnv))
	if err != nil {
		return nil, err
	}
	hostname, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("read this host's name: %w", err)
	}
	return &operatorEnv{cfg: cfg, log: log, hostname: hostname}, nil
}

// severalEngines says whether sandboxes are spread over several Engines
// ([engine] hosts), so the operator's tables say which one.
func (o *operatorEnv) severalEngines() engineColumn {
	return len(o.cfg.Engine.Endpoints()) > 1
}

// connect opens the Engine and checks that it answers.
func (o *operatorEnv) connect(ctx context.Context) (*executor.Engine, error) {
	engine, err := executor.Connect(o.engineOptions())
	if err != nil {
		return nil, err
	}
	if err := engine.Ping(ctx); err != nil {
		engine.Close()
		return nil, err
	}
	return engine, nil
}

// runWith makes a command's RunE that loads the operator's config first.
func runWith(load func() (*operatorEnv, error), f func(ctx context.Context, env *operatorEnv) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		env, err := load()
		if err != nil {
			return err
		}
		return f(cmd.Context(), env)
	}
}

// runWithEngine also opens the Engine, and closes it after f.
func runWithEngine(load func() (*operatorEnv, error), f func(ctx context.Context, env *operatorEnv, engine *executor.Engine) error) func(*cobra.Command, []string) error {
	return runWith(load, func(ctx context.Context, env *operatorEnv) error {
		engine, err := env.connect(ctx)
		if err != nil {
			return err
		}
		defer engine.Close()
		return f(ctx, env, engine)
	})
}

// operatorCommands are the commands for the people who run the runner.
func operatorCommands(opts *options, streams Streams, getenv func(string) string) []*cobra.Command {
	load := func() (*operatorEnv, error) { return loadOperatorEnv(opts, streams, getenv) }
	return []*cobra.Command{newPsCommand(load, streams), newAuditCommand(load, streams), newGCCommand(load, streams), newPoolCommand(load, streams)}
}
