package executor

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/moby/moby/client"
)

// SandboxInfo is one sandbox as the Engine sees it now, found by label:
// which job it serves, when its first object was made, and its objects.
type SandboxInfo struct {
	Identity   Identity
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

// IdentityFromLabels reads back the Identity that Labels wrote.
func IdentityFromLabels(labels map[string]string) Identity {
	num := func(key string) int64 {
		n, _ := strconv.ParseInt(labels[key], 10, 64)
		return n
	}
	return Identity{
		SandboxID:         labels[LabelSandbox],
		JobID:             num(LabelJobID),
		ProjectID:         num(LabelProjectID),
		PipelineID:        num(LabelPipelineID),
		ProjectPath:       labels[LabelProjectPath],
		JobName:           labels[LabelJobName],
		RunnerHost:        labels[LabelRunnerHost],
		JobResponseFile:   labels[LabelJobResponse],
		JobTimeoutSeconds: num(LabelJobTimeout),
	}
}

// Sandboxes lists every sandbox on the Engine, oldest first. Objects that
// are managed but belong to no sandbox (a project's cache volume, kept
// between jobs on purpose) are not part of any.
func (e *Engine) Sandboxes(ctx context.Context) ([]SandboxInfo, error) {
	return e.sandboxes(ctx, client.Filters{}.Add("label", LabelManaged+"=true").Add("label", LabelSandbox))
}

// SandboxByID is one sandbox's inventory; ok is false when nothing of it
// exists.
func (e *Engine) SandboxByID(ctx context.Context, sandboxID string) (info SandboxInfo, ok bool, err error) {
	list, err := e.sandboxes(ctx, client.Filters{}.Add("label", LabelSandbox+"="+sandboxID))
	if err != nil || len(list) == 0 {
		return SandboxInfo{Identity: Identity{SandboxID: sandboxID}}, false, err
	}
	return list[0], true, nil
}

func (e *Engine) sandboxes(ctx context.Context, filter client.Filters) ([]SandboxInfo, error) {
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

	inv := inventory{byID: map[string]*SandboxInfo{}}
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
	byID map[string]*SandboxInfo
}

// add accounts one object; it returns its sandbox, or nil for an object
// that belongs to none.
func (inv inventory) add(labels map[string]string, created time.Time) *SandboxInfo {
	id := labels[LabelSandbox]
	if id == "" {
		return nil
	}
	sb, ok := inv.byID[id]
	if !ok {
		sb = &SandboxInfo{Identity: IdentityFromLabels(labels)}
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
