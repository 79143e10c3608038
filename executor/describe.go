package executor

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/moby/moby/client"
)

// Description is a prepared sandbox as the Engine reports it: the rights,
// images and limits it actually applied, for the audit trail. It is read
// back rather than taken from the Spec, so a defaulted or ignored setting
// shows as it is.
type Description struct {
	Containers []ContainerRights
	Network    string
	MTU        int
}

// ContainerRights is one container's image and rights.
type ContainerRights struct {
	Role        Role
	Name        string
	ID          string
	ImageRef    string // as asked for
	ImageID     string
	RepoDigests []string // the registry digests of ImageID, when it came from one
	Privileged  bool
	CapAdd      []string
	CapDrop     []string
	SecurityOpt []string
	DeviceRules []string
	// Devices are the host devices mapped in, "host:container:perms".
	Devices []string
	// UnmaskedPaths: the container's /proc and /sys have none of Docker's
	// masked or read-only paths (systempaths=unconfined).
	UnmaskedPaths bool
	Binds         []string
	User          string
	Limits        Limits
}

// describe reads back every container of the sandbox and its network's
// MTU. The CA is not read back: the build container's copy is the job's
// to rewrite, and the executor made the CA itself.
func (e *docker) describe(ctx context.Context, id SandboxID) (Description, error) {
	info, ok, err := e.sandboxByID(ctx, id)
	if err != nil {
		return Description{}, err
	}
	if !ok {
		return Description{}, fmt.Errorf("sandbox %s has no objects on the engine", id)
	}
	var d Description
	var errs []error
	for _, c := range info.Containers {
		rights, err := e.containerRights(ctx, c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		d.Containers = append(d.Containers, rights)
	}
	d.Network = id.Name(RoleNetwork)
	if n, err := e.api.NetworkInspect(ctx, d.Network, client.NetworkInspectOptions{}); err != nil {
		errs = append(errs, fmt.Errorf("inspect network %s: %w", d.Network, err))
	} else {
		d.MTU, _ = strconv.Atoi(n.Network.Options[mtuOption])
	}
	return d, errors.Join(errs...)
}

func (e *docker) containerRights(ctx context.Context, c ContainerState) (ContainerRights, error) {
	res, err := e.api.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
	if err != nil {
		return ContainerRights{}, fmt.Errorf("inspect %s: %w", c.Name, err)
	}
	ci := res.Container
	r := ContainerRights{Role: c.Role, Name: c.Name, ID: ci.ID, ImageID: ci.Image}
	if ci.Config != nil {
		r.ImageRef, r.User = ci.Config.Image, ci.Config.User
		if ref := ci.Config.Labels[LabelImage]; ref != "" {
			r.ImageRef = ref
		}
	}
	if h := ci.HostConfig; h != nil {
		r.Privileged = h.Privileged
		r.CapAdd, r.CapDrop = h.CapAdd, h.CapDrop
		r.DeviceRules, r.Binds = h.DeviceCgroupRules, h.Binds
		for _, o := range h.SecurityOpt {
			// An inline seccomp profile is kilobytes: its digest.
			r.SecurityOpt = append(r.SecurityOpt, SummarizeSecurityOpt(o))
		}
		for _, d := range h.Devices {
			r.Devices = append(r.Devices, d.PathOnHost+":"+d.PathInContainer+":"+d.CgroupPermissions)
		}
		r.UnmaskedPaths = h.MaskedPaths != nil && len(h.MaskedPaths) == 0 && len(h.ReadonlyPaths) == 0
		r.Limits = Limits{NanoCPUs: h.NanoCPUs, MemoryBytes: h.Memory}
		if h.PidsLimit != nil {
			r.Limits.Pids = *h.PidsLimit
		}
	}
	if img, err := e.api.ImageInspect(ctx, ci.Image); err == nil {
		r.RepoDigests = img.RepoDigests
	}
	return r, nil
}
