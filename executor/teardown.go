package executor

import (
	"context"
	"errors"
	"fmt"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Removed lists what a Teardown removed, by name.
type Removed struct {
	Containers []string
	Volumes    []string
	Networks   []string
	LayerCache string // what happened to the project's layer cache, if any
}

func (r Removed) String() string {
	return fmt.Sprintf("%d containers, %d volumes, %d networks", len(r.Containers), len(r.Volumes), len(r.Networks))
}

// teardown removes every container, volume and network labelled with the
// sandbox id: containers first (in parallel), then volumes, then the
// network. It carries on past each failure and joins the errors; objects
// already gone count as removed. Safe after a failed prepare and idempotent.
func (e *docker) teardown(ctx context.Context, sandboxID SandboxID) (Removed, error) {
	var removed Removed
	filter := client.Filters{}.Add("label", LabelSandbox+"="+string(sandboxID))
	var errs []error

	// A daemon taken from the pool belongs to its pooled sandbox, which
	// goes with the job's.
	pooled, err := e.claimedPool(ctx, sandboxID)
	if err != nil {
		errs = append(errs, fmt.Errorf("find the pooled sandbox of %s: %w", sandboxID, err))
	}

	// The project's runner cache outlives the sandbox: note its last use
	// for gc --caches.
	e.stampCacheUse(ctx, sandboxID)

	// A layer cache outlives the sandbox: prune it and stop its daemon
	// cleanly before the containers go.
	if summary, err := e.releaseLayerCache(ctx, sandboxID); err != nil {
		errs = append(errs, err)
	} else if summary != "" {
		removed.LayerCache = summary
	}

	containers, err := e.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		errs = append(errs, fmt.Errorf("list containers: %w", err))
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range containers.Items {
		wg.Go(func() {
			_, err := e.api.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove container %s: %w", containerName(c.Names, c.ID), err))
				return
			}
			removed.Containers = append(removed.Containers, containerName(c.Names, c.ID))
		})
	}
	wg.Wait()

	volumes, err := e.api.VolumeList(ctx, client.VolumeListOptions{Filters: filter})
	if err != nil {
		errs = append(errs, fmt.Errorf("list volumes: %w", err))
	}
	for _, v := range volumes.Items {
		if _, err := e.api.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
			continue
		}
		removed.Volumes = append(removed.Volumes, v.Name)
	}

	networks, err := e.api.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
	if err != nil {
		errs = append(errs, fmt.Errorf("list networks: %w", err))
	}
	for _, n := range networks.Items {
		if _, err := e.api.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			continue
		}
		removed.Networks = append(removed.Networks, n.Name)
	}
	if pooled != "" && pooled != sandboxID {
		more, err := e.teardown(ctx, pooled)
		removed.add(more)
		errs = append(errs, err)
	}
	return removed, errors.Join(errs...)
}

func (r Removed) empty() bool { return len(r.Containers)+len(r.Volumes)+len(r.Networks) == 0 }

// add counts what another teardown removed.
func (r *Removed) add(more Removed) {
	r.Containers = append(r.Containers, more.Containers...)
	r.Volumes = append(r.Volumes, more.Volumes...)
	r.Networks = append(r.Networks, more.Networks...)
}

func containerName(names []string, id string) string {
	if len(names) > 0 && len(names[0]) > 1 {
		return names[0][1:]
	}
	return id
}
