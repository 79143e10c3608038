package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/integration/runner"
)

// session is one job attempt driven hook by hook: integration/runner sets
// it up as GitLab Runner would (temp dir, job response, config_exec, the
// environment), and the bench starts each hook itself, to time that one
// process and read its rusage. Whole jobs go through the emulator instead.
type session struct {
	attempt *runner.HookAttempt
	sandbox sandbox // known once prepare ran
}

// newSession sets up an attempt of a job of project that runs `exit 0`.
func (b *bench) newSession(ctx context.Context, configPath string, project benchProject, name string) (*session, error) {
	job := b.job(project, "exit 0")
	job.Name = name
	a, err := b.product.emulator(configPath).NewHookAttempt(ctx, job)
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", name, err)
	}
	return &session{attempt: a}, nil
}

// hook runs one hook with extra arguments and measures it.
func (s *session) hook(ctx context.Context, mode outputMode, hook string, extra ...string) (hookRun, error) {
	return measure(s.attempt.Command(ctx, hook, extra...), mode, "")
}

// prepare runs the prepare hook and finds the sandbox it made.
func (s *session) prepare(ctx context.Context, api *client.Client) (hookRun, error) {
	run, err := s.hook(ctx, keepLines, "prepare")
	if err != nil {
		return run, fmt.Errorf("prepare hook: %w", err)
	}
	if s.sandbox, err = findSandbox(ctx, api, s.attempt.JobResponseFile()); err != nil {
		return run, err
	}
	return run, nil
}

// cleanup runs the cleanup hook, even after ctx ended (nothing may stay
// behind), then removes the attempt's temp dir as the runner does.
func (s *session) cleanup(ctx context.Context) (hookRun, error) {
	run, err := s.hook(context.WithoutCancel(ctx), keepLines, "cleanup")
	if err != nil {
		err = fmt.Errorf("cleanup hook: %w", err)
	}
	return run, errors.Join(err, s.attempt.Remove())
}

// withSandbox prepares a session, runs f in its sandbox, and cleans up
// whatever f returned.
func (b *bench) withSandbox(ctx context.Context, name string, f func(*session) error) error {
	s, err := b.newSession(ctx, b.product.configPath, b.inv.newProject("hooks"), name)
	if err != nil {
		return err
	}
	_, err = s.prepare(ctx, b.api)
	if err == nil {
		err = f(s)
	}
	_, cerr := s.cleanup(ctx)
	return errors.Join(err, cerr)
}
