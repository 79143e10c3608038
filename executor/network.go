package executor

import (
	"context"
	"fmt"
	"strconv"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

const mtuOption = "com.docker.network.driver.mtu"

// outerMTU is the MTU of the Engine's default bridge: the inner daemon and
// the job network must not exceed it, or pulls inside the sandbox hang.
func (e *docker) outerMTU(ctx context.Context) (int, error) {
	res, err := e.api.NetworkInspect(ctx, "bridge", client.NetworkInspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return defaultBridgeMTU, nil
		}
		return 0, fmt.Errorf("inspect default bridge network for its MTU: %w", err)
	}
	if v, ok := res.Network.Options[mtuOption]; ok {
		mtu, err := strconv.Atoi(v)
		if err == nil && mtu > 0 {
			return mtu, nil
		}
	}
	return defaultBridgeMTU, nil
}

// createNetwork makes a sandbox's private bridge (internal: with no route
// out of it), or adopts the one an
// earlier attempt of this sandbox made. It looks before it creates: Engines
// before API 1.44 accept duplicate network names unless asked not to, and
// this client no longer sends that flag.
func (e *docker) createNetwork(ctx context.Context, name string, mtu int, labels map[string]string, internal bool) (string, error) {
	existing, err := e.api.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	switch {
	case err == nil && existing.Network.Labels[LabelSandbox] == labels[LabelSandbox]:
		return name, nil
	case err == nil:
		return "", fmt.Errorf("create network %s: a network with that name exists and is not this sandbox's", name)
	case !cerrdefs.IsNotFound(err):
		return "", fmt.Errorf("inspect network %s: %w", name, err)
	}
	_, err = e.api.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Driver:   "bridge",
		Internal: internal,
		Options:  map[string]string{mtuOption: strconv.Itoa(mtu)},
		Labels:   labels,
	})
	if err != nil {
		return "", fmt.Errorf("create network %s: %w", name, err)
	}
	return name, nil
}

// createVolume makes a labelled volume; creating an existing volume is a
// no-op in the Engine, so a retried prepare, or the next job of a project
// for its cache, reuses it.
func (e *docker) createVolume(ctx context.Context, name string, labels map[string]string) error {
	if _, err := e.api.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: labels}); err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	return nil
}
