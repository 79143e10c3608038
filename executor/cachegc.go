package executor

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Project cache volumes (the runner's cache at cache_dir, and the layer
// cache) outlive the jobs that use them. Each teardown stamps the time it
// last used one in a file at the volume's root, so gc can tell which ones
// no job has used for a while.

const cacheStampFile = ".dind-executor-last-used"

// CacheVolume is a project's cache volume.
type CacheVolume struct {
	Name        string
	Role        Role // RoleCache or RoleLayers
	ProjectID   int64
	ProjectPath string
	LastUsed    time.Time // the last teardown's stamp, else the volume's creation
	InUse       bool      // a container (of a running job) mounts it
}

// stampRunnerCache records, from inside the helper container, that the
// project's runner cache was used now. Best effort: a missing helper means
// the job never ran a stage.
func (e *Engine) stampRunnerCache(ctx context.Context, sandboxID string) {
	helper := Identity{SandboxID: sandboxID}.Name(RoleHelper)
	res, err := e.api.ContainerInspect(ctx, helper, client.ContainerInspectOptions{})
	if err != nil || res.Container.State == nil || !res.Container.State.Running {
		return
	}
	for _, m := range res.Container.Mounts {
		if strings.HasPrefix(m.Name, "dind-cache-") {
			var out bytes.Buffer
			_ = e.execDetached(ctx, helper, []string{"sh", "-c", `date +%s > "$1/` + cacheStampFile + `"`, "stamp", m.Destination}, &out)
		}
	}
}

// CacheVolumes lists the project cache volumes (of one project when
// projectID is not 0) with when they were last used; probeImage is any
// local image with cat, used to read the stamps.
func (e *Engine) CacheVolumes(ctx context.Context, probeImage string, projectID int64) ([]CacheVolume, error) {
	filter := client.Filters{}.Add("label", LabelProjectKey)
	if projectID != 0 {
		filter = filter.Add("label", LabelProjectID+"="+strconv.FormatInt(projectID, 10))
	}
	res, err := e.api.VolumeList(ctx, client.VolumeListOptions{Filters: filter})
	if err != nil {
		return nil, fmt.Errorf("list cache volumes: %w", err)
	}
	var out []CacheVolume
	for _, v := range res.Items {
		role := Role(v.Labels[LabelRole])
		if role != RoleCache && role != RoleLayers {
			continue
		}
		cv := CacheVolume{Name: v.Name, Role: role, ProjectPath: v.Labels[LabelProjectPath]}
		cv.ProjectID, _ = strconv.ParseInt(v.Labels[LabelProjectID], 10, 64)
		cv.LastUsed, _ = time.Parse(time.RFC3339, v.CreatedAt)
		users, err := e.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("volume", v.Name)})
		if err != nil {
			return nil, fmt.Errorf("containers using volume %s: %w", v.Name, err)
		}
		cv.InUse = len(users.Items) > 0
		if !cv.InUse {
			if stamp, err := e.readStamp(ctx, probeImage, v.Name, role); err == nil {
				cv.LastUsed = stamp
			}
		}
		out = append(out, cv)
	}
	return out, nil
}

// readStamp reads a volume's last-use stamp with a short-lived container.
func (e *Engine) readStamp(ctx context.Context, probeImage, volume string, role Role) (time.Time, error) {
	file := "/v/" + cacheStampFile
	if role == RoleLayers {
		file = "/v/" + strings.TrimPrefix(layerStampFile, "/var/lib/docker/")
	}
	created, err := e.api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: probeImage, Entrypoint: []string{"cat", file}, Labels: map[string]string{LabelManaged: "true", LabelRole: "cache-probe"}},
		HostConfig: &container.HostConfig{Binds: []string{volume + ":/v:ro"}, NetworkMode: "none"},
	})
	if err != nil {
		return time.Time{}, err
	}
	defer e.api.ContainerRemove(context.WithoutCancel(ctx), created.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if _, err := e.api.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return time.Time{}, err
	}
	wait := e.api.ContainerWait(ctx, created.ID, client.ContainerWaitOptions{})
	select {
	case err := <-wait.Error:
		return time.Time{}, err
	case <-wait.Result:
	}
	logs, err := e.api.ContainerLogs(ctx, created.ID, client.ContainerLogsOptions{ShowStdout: true})
	if err != nil {
		return time.Time{}, err
	}
	defer logs.Close()
	var buf bytes.Buffer
	if _, err := stdcopyBoth(&buf, logs); err != nil {
		return time.Time{}, err
	}
	secs, err := strconv.ParseInt(strings.TrimSpace(buf.String()), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("stamp of %s: %q", volume, buf.String())
	}
	return time.Unix(secs, 0), nil
}

// RemoveCacheVolume removes a project cache volume no container uses.
func (e *Engine) RemoveCacheVolume(ctx context.Context, name string) error {
	if _, err := e.api.VolumeRemove(ctx, name, client.VolumeRemoveOptions{}); err != nil {
		return fmt.Errorf("remove cache volume %s: %w", name, err)
	}
	return nil
}
