package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/executor/audit"
)

type gcOptions struct {
	olderThan time.Duration
	dryRun    bool
	sandbox   string
	caches    time.Duration
	project   int64
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := load()
			if err != nil {
				return err
			}
			return runGC(cmd.Context(), env, streams.Out, opts)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&opts.olderThan, "older-than", 0, "remove sandboxes not known to be running once this old (default: each sandbox's job timeout plus 1h)")
	f.BoolVar(&opts.dryRun, "dry-run", false, "list what would be removed and why; remove nothing")
	f.StringVar(&opts.sandbox, "sandbox", "", "consider only this sandbox id")
	f.Int64Var(&opts.project, "project", 0, "with --caches: consider only this project's cache volumes")
	f.DurationVar(&opts.caches, "caches", 0, "also remove project cache volumes (runner cache, layer cache) no job has used for this long, e.g. 168h (default: keep them)")
	return cmd
}

func runGC(ctx context.Context, env *operatorEnv, out io.Writer, opts *gcOptions) error {
	engine, err := env.connect(ctx)
	if err != nil {
		return err
	}
	defer engine.Close()
	if opts.olderThan < 0 {
		return fmt.Errorf("--older-than %s is negative", opts.olderThan)
	}
	verdicts, err := engine.GCPlan(ctx, executor.GCPolicy{OlderThan: opts.olderThan, Hostname: env.hostname, Now: time.Now()})
	if err != nil {
		return err
	}

	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tSANDBOX\tJOB\tPROJECT\tAGE\tREASON")
	var errs []error
	removed, considered := 0, 0
	auditor := env.auditor()
	for _, v := range verdicts {
		id := v.Sandbox.Identity
		if opts.sandbox != "" && id.SandboxID != opts.sandbox {
			continue
		}
		considered++
		action := "keep"
		switch {
		case v.Remove && opts.dryRun:
			action = "would remove"
		case v.Remove:
			action = "removed"
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), gcTimeout)
			_, err := auditor.Teardown(tctx, engine, id.SandboxID, audit.JobRef{}, "gc", v.Reason)
			cancel()
			if err != nil {
				action = "failed"
				errs = append(errs, fmt.Errorf("remove sandbox %s: %w", id.SandboxID, err))
			} else {
				removed++
			}
		}
		env.log.WithField("sandbox", id.SandboxID).WithField("action", action).Info(v.Reason)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", action, id.SandboxID, id.JobID, project(id.ProjectID, id.ProjectPath),
			v.Sandbox.Age(time.Now()).Round(time.Second), v.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "gc: %d sandboxes, %d removed\n", considered, removed)
	if opts.caches > 0 {
		errs = append(errs, gcCaches(ctx, env, engine, out, opts))
	}
	return errors.Join(errs...)
}

// gcCaches removes project cache volumes unused for longer than
// opts.caches; a volume a running job mounts is never touched.
func gcCaches(ctx context.Context, env *operatorEnv, engine *executor.Engine, out io.Writer, opts *gcOptions) error {
	volumes, err := engine.CacheVolumes(ctx, env.cfg.Sandbox.DindImage, opts.project)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tCACHE VOLUME\tKIND\tPROJECT\tLAST USED")
	var errs []error
	removed, considered := 0, 0
	for _, v := range volumes {
		considered++
		idle := time.Since(v.LastUsed).Round(time.Second)
		action := "keep"
		switch {
		case v.InUse:
			action, idle = "keep (in use)", 0
		case idle < opts.caches:
		case opts.dryRun:
			action = "would remove"
		default:
			action = "removed"
			if err := engine.RemoveCacheVolume(ctx, v.Name); err != nil {
				action = "failed"
				errs = append(errs, err)
			} else {
				removed++
			}
		}
		env.log.WithField("volume", v.Name).WithField("action", action).Info("cache volume")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s ago\n", action, v.Name, v.Role, project(v.ProjectID, v.ProjectPath), idle)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "gc: %d cache volumes considered, %d removed\n", considered, removed)
	return errors.Join(errs...)
}
