package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"gitlab.com/dind-executor/dind-executor/integration/tarball"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// goToolchainImage makes the runner image's GO_IMAGE without a registry:
// the job image plus this machine's Go toolchain, committed from a
// container, as integration/dockerfile_test.go does. The image carries the
// bench label, so the final sweep removes it whatever happens.
func goToolchainImage(ctx context.Context, api *client.Client, inv *invocation) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOROOT").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOROOT: %w", err)
	}
	goroot := strings.TrimSpace(string(out))
	created, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: seedjob.JobImage, Cmd: []string{"true"}, Labels: inv.labels("go-image-source")},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		return "", fmt.Errorf("container for the Go image: %w", err)
	}
	defer func() {
		_, _ = api.ContainerRemove(context.WithoutCancel(ctx), created.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}()

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarball.Dir(pw, goroot, "usr/local/go", nil)) }()
	if _, err := api.CopyToContainer(ctx, created.ID, client.CopyToContainerOptions{DestinationPath: "/", Content: pr}); err != nil {
		pr.CloseWithError(err)
		return "", fmt.Errorf("copy the Go toolchain into the Go image: %w", err)
	}
	tag := fmt.Sprintf("dind-executor.local/bench-go:%d", inv.tag)
	changes := []string{
		"ENV PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"ENV GOFLAGS=-buildvcs=false",
		"ENV GOTOOLCHAIN=local",
	}
	for k, v := range inv.labels("go-image") {
		changes = append(changes, fmt.Sprintf("LABEL %s=%s", k, v))
	}
	if _, err := api.ContainerCommit(ctx, created.ID, client.ContainerCommitOptions{Reference: tag, Changes: changes}); err != nil {
		return "", fmt.Errorf("commit the Go image: %w", err)
	}
	return tag, nil
}

// saveImages writes refs as one `docker save` archive (shared layers once)
// to path, for jobs to `docker load` where no registry is reachable.
func saveImages(ctx context.Context, api *client.Client, path string, refs ...string) error {
	res, err := api.ImageSave(ctx, refs)
	if err != nil {
		return fmt.Errorf("save %s: %w", strings.Join(refs, ", "), err)
	}
	defer res.Close()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("saved images file: %w", err)
	}
	if _, err := io.Copy(f, res); err != nil {
		f.Close()
		return fmt.Errorf("save %s: %w", strings.Join(refs, ", "), err)
	}
	return f.Close()
}
