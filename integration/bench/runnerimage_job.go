package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

const (
	runnerImageRepoDir = "runner-image"
	baseImagesArchive  = "base-images.tar"
	runnerImageTag     = "dind-executor-runner:bench"
)

// runnerImageJob is what the runner image's jobs need.
type runnerImageJob struct {
	goImage, runnerImage string // GO_IMAGE and RUNNER_IMAGE
	archive              string // the saved base images, as the job sees it
	repoURL, sha         string
}

// script loads the base images when missing, builds the image, and checks
// that its dind-executor runs.
func (j runnerImageJob) script() []string {
	images := j.goImage + " " + j.runnerImage
	return []string{
		timed("load", `if docker image inspect `+images+` >/dev/null 2>&1; then echo "BENCH-BASE present"; else `+
			quiet("load", "docker load -i "+j.archive)+`; echo "BENCH-BASE loaded"; fi`),
		timed("build", quiet("build", fmt.Sprintf("docker build --build-arg GO_IMAGE=%s --build-arg RUNNER_IMAGE=%s --build-arg VERSION=bench -t %s .",
			j.goImage, j.runnerImage, runnerImageTag))),
		"docker run --rm " + runnerImageTag + " dind-executor version | grep 'dind-executor bench'",
	}
}

// of is the job in project: the seed job's settings, this repository.
func (j runnerImageJob) of(b *bench, project benchProject) runner.Job {
	job := b.job(project, j.script()...)
	job.RepoURL, job.SHA = j.repoURL, j.sha
	return job
}

var baseImagesResult = regexp.MustCompile(`(?m)^BENCH-BASE (\w+)\s*$`)

// baseImages says whether the job loaded its base images or found them.
func baseImages(res *runner.Result) string {
	if m := baseImagesResult.FindStringSubmatch(scriptOutput(res)); m != nil {
		return m[1]
	}
	return "?"
}

// prepareRunnerImageJob makes the Go image, saves it with the runner base
// into the mount, and writes the repository. remove removes the Go image
// (also after an error; the final sweep would otherwise).
func prepareRunnerImageJob(ctx context.Context, b *bench) (job runnerImageJob, remove func(), err error) {
	remove = func() {}
	job.runnerImage = seedjob.JobImage // a stand-in runner image, as the Dockerfile test uses
	if job.goImage, err = goToolchainImage(ctx, b.api, b.inv); err != nil {
		return job, remove, err
	}
	remove = func() {
		_, _ = b.api.ImageRemove(context.WithoutCancel(ctx), job.goImage, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	}
	if err := saveImages(ctx, b.api, filepath.Join(b.product.mountDir, baseImagesArchive), job.goImage, job.runnerImage); err != nil {
		return job, remove, err
	}
	job.archive = b.product.mountPath(baseImagesArchive)
	job.repoURL = b.product.mountPath(runnerImageRepoDir)
	job.sha, err = writeRunnerImageRepo(ctx, b.root, filepath.Join(b.product.mountDir, runnerImageRepoDir))
	return job, remove, err
}
