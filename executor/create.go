package executor

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// createContainer creates c. A leftover container of the same name from an
// earlier attempt of this sandbox is removed first, as the docker executor
// does; a same-named container that is not ours is never touched.
func (e *docker) createContainer(ctx context.Context, c containerSpec) (string, error) {
	opts := client.ContainerCreateOptions{Name: c.name, Config: c.config, HostConfig: c.host, NetworkingConfig: c.networking}
	if c.platform != "" {
		p, err := parsePlatform(c.platform)
		if err != nil {
			return "", fmt.Errorf("create %s: %w", c, err)
		}
		opts.Platform = p
	}
	res, err := e.api.ContainerCreate(ctx, opts)
	if cerrdefs.IsConflict(err) {
		old, ierr := e.api.ContainerInspect(ctx, c.name, client.ContainerInspectOptions{})
		if ierr != nil || old.Container.Config == nil || old.Container.Config.Labels[LabelSandbox] != c.config.Labels[LabelSandbox] {
			return "", fmt.Errorf("create %s: a container with that name exists and is not this sandbox's: %w", c, err)
		}
		if _, rerr := e.api.ContainerRemove(ctx, c.name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); rerr != nil {
			return "", fmt.Errorf("remove leftover %s: %w", c, rerr)
		}
		res, err = e.api.ContainerCreate(ctx, opts)
	}
	if err != nil {
		return "", fmt.Errorf("create %s: %w", c, err)
	}
	for _, w := range res.Warnings {
		e.log.WithField("container", c.name).Warn(w)
	}
	if err := e.joinNetworks(ctx, res.ID, c); err != nil {
		return "", err
	}
	return res.ID, nil
}

// copyFiles places files in a stopped or running container through the
// Engine API. With ownedByUser the files belong to the container's user.
func (e *docker) copyFiles(ctx context.Context, containerID string, files []certFile, ownedByUser bool) error {
	archive, err := certArchive(files)
	if err != nil {
		return err
	}
	_, err = e.api.CopyToContainer(ctx, containerID, client.CopyToContainerOptions{
		DestinationPath: "/",
		Content:         archive,
		CopyUIDGID:      ownedByUser,
	})
	if err != nil {
		return fmt.Errorf("copy certificates into container %s: %w", containerID, err)
	}
	return nil
}

func (e *docker) startContainer(ctx context.Context, id string, c containerSpec) error {
	if _, err := e.api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start %s: %w", c, err)
	}
	return nil
}
