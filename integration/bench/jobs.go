package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// job is the seed job (its image, docker:dind service entry and variables)
// in project, running script instead of the seed's; the project's path
// says where its sandbox comes from.
func (b *bench) job(project benchProject, script ...string) runner.Job {
	job := seedjob.Job(b.inv.newJobID(), b.seedSHA)
	job.RepoURL = b.product.mountPath(seedRepoDir)
	job.ProjectID = project.id
	job.PipelineID = b.inv.tag
	job.ProjectPath = project.path
	job.Script = script
	job.AfterScript = nil
	return job
}

// lightJob is "a whole light job": the runner's stages around `docker info`
// against the sandbox's daemon.
func (b *bench) lightJob(project benchProject) runner.Job { return b.job(project, "docker info") }

// runJob runs job through e and fails unless it succeeded; the time is
// Emulator.Run's, config to cleanup.
func runJob(ctx context.Context, e *runner.Emulator, job runner.Job) (*runner.Result, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := e.Run(ctx, job)
	wall := time.Since(start)
	if err != nil {
		return nil, wall, fmt.Errorf("job %d: %w", job.ID, err)
	}
	if res.Outcome.Kind != runner.OutcomeSuccess {
		return res, wall, fmt.Errorf("job %d: %s\n%s", job.ID, res.Outcome, lastLines(runner.PlainText(res.Log), 60))
	}
	return res, wall, nil
}

// lastLines is the end of a long text, for error messages.
func lastLines(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
