package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"gitlab.com/dind-executor/dind-executor/executor"
)

type gcOptions struct {
	olderThan time.Duration
	dryRun    bool
	sandbox   string
	caches    time.Duration
	project   int64
	engines   engineColumn
}

// gcTimeout bounds one sandbox's teardown, as cleanup's own bound does.
const gcTimeout = 5 * time.Minute

func newGCCommand(load func() (*operatorEnv, error), streams Streams) *cobra.Command {
	opts := &gcOptions{}
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "remove sandboxes whose job is over (safe from cron while jobs run; idempotent, like rm -f)",
		Long: `gc removes the sandboxes left behind by jobs that are over: a runner that crashed
or was killed before cleanup, a prepare killed half way. A sandbox made on this host
is over when the runner's temp dir holding its JOB_RESPONSE_FILE is gone; while that
dir exists the job is running and its sandbox is kept until it is older than its job's
timeout plus 1h (the runner stops every job at its timeout). A sandbox from another
host, or without those labels, is removed once older than --older-than. Each removal
is recorded in the audit trail, with what the sandbox's daemon still held.`,
		Args: cobra.NoArgs,
		RunE: runWithEngine(load, func(ctx context.Context, env *operatorEnv, engine *executor.Engine) error {
			opts.engines = env.severalEngines()
			return runGC(ctx, env.hostname, engine, streams.Out, opts)
		}),
	}
	f := cmd.Flags()
	f.DurationVar(&opts.olderThan, "older-than", 0, "remove sandboxes not known to be running once this old (default: each sandbox's job timeout plus 1h)")
	f.BoolVar(&opts.dryRun, "dry-run", false, "list what would be removed and why; remove nothing")
	f.StringVar(&opts.sandbox, "sandbox", "", "consider only this sandbox id")
	f.Int64Var(&opts.project, "project", 0, "with --caches: consider only this project's cache volumes")
	f.DurationVar(&opts.caches, "caches", 0, "also remove project cache volumes (runner cache, layer cache) no job has used for this long, e.g. 168h (default: keep them)")
	return cmd
}

func runGC(ctx context.Context, hostname string, engine *executor.Engine, out io.Writer, opts *gcOptions) error {
	if opts.olderThan < 0 {
		return fmt.Errorf("--older-than %s is negative", opts.olderThan)
	}
	now := time.Now()
	results, gcErr := engine.GC(ctx, executor.GCOptions{
		Policy:     executor.GCPolicy{OlderThan: opts.olderThan, Hostname: hostname, Now: now},
		Sandbox:    executor.SandboxID(opts.sandbox),
		DryRun:     opts.dryRun,
		PerSandbox: gcTimeout,
	})
	t := newTable(out, opts.engines.header("ACTION", "SANDBOX", "JOB", "PROJECT", "AGE", "REASON")...)
	removed := 0
	for _, r := range results {
		id := r.Sandbox.Identity
		if r.Action == executor.GCRemoved {
			removed++
		}
		t.row(opts.engines.cells(r.Sandbox.Engine, r.Action, id.SandboxID, id.JobID, project(id.ProjectID, id.ProjectPath), r.Sandbox.Age(now).Round(time.Second), r.Reason)...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "gc: %d sandboxes, %d removed\n", len(results), removed)
	errs := []error{gcErr}
	if opts.caches > 0 {
		errs = append(errs, gcCaches(ctx, engine, out, opts))
	}
	return errors.Join(errs...)
}

// gcCaches removes project cache volumes unused for longer than
// opts.caches; a volume a running job mounts is never touched.
func gcCaches(ctx context.Context, engine *executor.Engine, out io.Writer, opts *gcOptions) error {
	results, gcErr := engine.GCCaches(ctx, executor.CacheGCOptions{UnusedFor: opts.caches, ProjectID: opts.project, DryRun: opts.dryRun, Now: time.Now()})
	t := newTable(out, opts.engines.header("ACTION", "CACHE VOLUME", "KIND", "PROJECT", "LAST USED")...)
	removed := 0
	for _, r := range results {
		action := string(r.Action)
		if r.InUse {
			action = "keep (in use)"
		}
		if r.Action == executor.GCRemoved {
			removed++
		}
		t.row(opts.engines.cells(r.Engine, action, r.Name, r.Role, project(r.ProjectID, r.ProjectPath), r.Idle.Round(time.Second).String()+" ago")...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "gc: %d cache volumes considered, %d removed\n", len(results), removed)
	return gcErr
}
