package executor

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/moby/moby/client"
)

// SandboxInfo is one sandbox as the Engine sees it now, found by label:
// which job it serves, when its first object was made, and its objects.
type SandboxInfo struct {
	Identity   Identity
	Engine     string    // the Engine it is on, as [engine] names it
	Created    time.Time // its oldest object
	Containers []ContainerState
	Volumes    []string
	Networks   []string
}

// ContainerState is one sandbox container and what the Engine says of it.
type ContainerState struct {
	Role   Role
	Name   string
	ID     string
	Image  string
	State  string // created, running, exited, ...
	Status string // the Engine's words, e.g. "Up 3 minutes"
}

// Age is how long the sandbox has existed at now.
func (s SandboxInfo) Age(now time.Time) time.Duration {
	if s.Created.IsZero() {
		return 0
	}
	return now.Sub(s.Created)
}

// sandboxes lists every sandbox on the Engine, oldest first. Objects that
// are managed but belong to no sandbox (a project's cache volume, kept
// between jobs on purpose) are not part of any.
func (e *docker) sandboxes(ctx context.Context) ([]SandboxInfo, error) {
	return e.sandboxesWhere(ctx, client.Filters{}.Add("label", LabelManaged+"=true").Add("label", LabelSandbox))
}

// containerIdentity reads the job a sandbox container serves from its
// labels, which prepare wrote from the runner's job response.
func (e *docker) containerIdentity(ctx context.Context, id SandboxID, role Role) (Identity, error) {
	res, err := e.api.ContainerInspect(ctx, id.Name(role), client.ContainerInspectOptions{})
	if err != nil {
		return Identity{}, fmt.Errorf("inspect %s: %w", id.Name(role), err)
	}
	if res.Container.Config == nil {
		return Identity{}, fmt.Errorf("inspect %s: no config", id.Name(role))
	}
	return IdentityFromLabels(res.Container.Config.Labels), nil
}

// sandboxByID is one sandbox's inventory; ok is false when nothing of it
// exists.
func (e *docker) sandboxByID(ctx context.Context, id SandboxID) (info SandboxInfo, ok bool, err error) {
	list, err := e.sandboxesWhere(ctx, client.Filters{}.Add("label", LabelSandbox+"="+string(id)))
	if err != nil || len(list) == 0 {
		return SandboxInfo{Identity: Identity{SandboxID: id}, Engine: e.endpoint}, false, err
	}
	return list[0], true, nil
}

func (e *docker) sandboxesWhere(ctx context.Context, filter client.Filters) ([]SandboxInfo, error) {
	containers, err := e.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		return nil, fmt.Errorf("list sandbox containers: %w", err)
	}
	volumes, err := e.api.VolumeList(ctx, client.VolumeListOptions{Filters: filter})
	if err != nil {
		return nil, fmt.Errorf("list sandbox volumes: %w", err)
	}
	networks, err := e.api.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
	if err != nil {
		return nil, fmt.Errorf("list sandbox networks: %w", err)
	}

	inv := inventory{byID: map[SandboxID]*SandboxInfo{}, engine: e.endpoint}
	for _, c := range containers.Items {
		sb := inv.add(c.Labels, time.Unix(c.Created, 0))
		if sb == nil {
			continue
		}
		sb.Containers = append(sb.Containers, ContainerState{
			Role: Role(c.Labels[LabelRole]), Name: containerName(c.Names, c.ID), ID: c.ID,
			Image: c.Image, State: string(c.State), Status: c.Status,
		})
	}
	for _, v := range volumes.Items {
		created, _ := time.Parse(time.RFC3339, v.CreatedAt)
		if sb := inv.add(v.Labels, created); sb != nil {
			sb.Volumes = append(sb.Volumes, v.Name)
		}
	}
	for _, n := range networks.Items {
		if sb := inv.add(n.Labels, n.Created); sb != nil {
			sb.Networks = append(sb.Networks, n.Name)
		}
	}
	return inv.sorted(), nil
}

// inventory groups objects by sandbox id.
type inventory struct {
	byID   map[SandboxID]*SandboxInfo
	engine string
}

// add accounts one object; it returns its sandbox, or nil for an object
// that belongs to none.
func (inv inventory) add(labels map[string]string, created time.Time) *SandboxInfo {
	id := SandboxID(labels[LabelSandbox])
	if id == "" {
		return nil
	}
	sb, ok := inv.byID[id]
	if !ok {
		sb = &SandboxInfo{Identity: IdentityFromLabels(labels), Engine: inv.engine}
		inv.byID[id] = sb
	}
	if !created.IsZero() && created.Unix() > 0 && (sb.Created.IsZero() || created.Before(sb.Created)) {
		sb.Created = created
	}
	return sb
}

func (inv inventory) sorted() []SandboxInfo {
	out := make([]SandboxInfo, 0, len(inv.byID))
	for _, sb := range inv.byID {
		slices.SortFunc(sb.Containers, func(a, b ContainerState) int { return roleOrder(a.Role) - roleOrder(b.Role) })
		slices.Sort(sb.Volumes)
		slices.Sort(sb.Networks)
		out = append(out, *sb)
	}
	slices.SortFunc(out, func(a, b SandboxInfo) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.Identity.SandboxID, b.Identity.SandboxID)
	})
	return out
}

// roleOrder lists a sandbox's containers as they are made.
func roleOrder(r Role) int {
	i := slices.Index([]Role{RoleDaemon, RoleService, RoleBuild, RoleHelper}, r)
	if i < 0 {
		return 99
	}
	return i
}
