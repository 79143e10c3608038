package executor

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
)

// Project cache volumes (the runner's cache at cache_dir, and the layer
// cache) outlive the jobs that use them. Each teardown records when it last
// used one on a marker container named after the volume, so gc can tell
// which ones no job has used for a while. Nothing is written into the
// volume: its files are the job's.

// CacheVolume is a project's cache volume.
type CacheVolume struct {
	Name        string
	Engine      string // the Engine it is on, as [engine] names it
	Role        Role   // RoleCache or RoleLayers
	ProjectID   int64
	ProjectPath string
	LastUsed    time.Time // the last teardown's record, else the volume's creation
	InUse       bool      // a container (of a running job) mounts it
}

func lastUseMarkerName(volume string) string { return volume + "-last-use" }

// stampCacheUse records that the sandbox's job used its project's cache
// volumes now. It reads which ones from the helper container at once and
// records them in the background; wait for that with the returned func.
// Best effort: a missing helper means the job never ran a stage.
func (e *docker) stampCacheUse(ctx context.Context, id SandboxID) (wait func()) {
	res, err := e.api.ContainerInspect(ctx, id.Name(RoleHelper), client.ContainerInspectOptions{})
	if err != nil || res.Container.Config == nil {
		return func() {}
	}
	var wg sync.WaitGroup
	for _, m := range res.Container.Mounts {
		if strings.HasPrefix(m.Name, "dind-cache-") {
			wg.Go(func() { e.stampVolumeUse(ctx, m.Name, res.Container.Image, res.Container.Config.Labels, false) })
		}
	}
	return wg.Wait
}

// stampVolumeUse replaces the volume's last-use marker; image is any local
// image (the marker never runs) and owner the labels of the sandbox
// container that used it, for the project it belongs to. clean says a
// layer cache volume was scrubbed after its job (layercache.go): only a
// volume whose marker says so is handed to the next job.
func (e *docker) stampVolumeUse(ctx context.Context, volume, image string, owner map[string]string, clean bool) {
	labels := map[string]string{
		LabelManaged:     "true",
		LabelRole:        string(RoleLastUse),
		LabelVolume:      volume,
		LabelLastUsed:    strconv.FormatInt(time.Now().Unix(), 10),
		LabelProjectID:   owner[LabelProjectID],
		LabelProjectPath: owner[LabelProjectPath],
	}
	if clean {
		labels[LabelLayersClean] = "true"
	}
	if err := e.replaceMarker(ctx, marker{name: lastUseMarkerName(volume), image: image, labels: labels}); err != nil {
		e.log.WithError(err).WithField("volume", volume).Warn("record the cache volume's last use")
	}
}

// cacheVolumes lists the project cache volumes (of one project when
// projectID is not 0) with when they were last used.
func (e *docker) cacheVolumes(ctx context.Context, projectID int64) ([]CacheVolume, error) {
	filter := client.Filters{}.Add("label", LabelProjectKey)
	if projectID != 0 {
		filter = filter.Add("label", LabelProjectID+"="+strconv.FormatInt(projectID, 10))
	}
	res, err := e.api.VolumeList(ctx, client.VolumeListOptions{Filters: filter})
	if err != nil {
		return nil, fmt.Errorf("list cache volumes: %w", err)
	}
	lastUse, err := e.lastUses(ctx)
	if err != nil {
		return nil, err
	}
	if projectID == 0 {
		e.removeOrphanMarkers(ctx, lastUse, res.Items)
	}
	var out []CacheVolume
	for _, v := range res.Items {
		role := Role(v.Labels[LabelRole])
		if role != RoleCache && role != RoleLayers {
			continue
		}
		cv := CacheVolume{Name: v.Name, Engine: e.endpoint, Role: role, ProjectPath: v.Labels[LabelProjectPath]}
		cv.ProjectID, _ = strconv.ParseInt(v.Labels[LabelProjectID], 10, 64)
		cv.LastUsed, _ = time.Parse(time.RFC3339, v.CreatedAt)
		if t, ok := lastUse[v.Name]; ok && t.After(cv.LastUsed) {
			cv.LastUsed = t
		}
		users, err := e.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("volume", v.Name)})
		if err != nil {
			return nil, fmt.Errorf("containers using volume %s: %w", v.Name, err)
		}
		cv.InUse = len(users.Items) > 0
		out = append(out, cv)
	}
	return out, nil
}

// lastUses reads every last-use marker: volume name -> time.
func (e *docker) lastUses(ctx context.Context) (map[string]time.Time, error) {
	res, err := e.api.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: client.Filters{}.Add("label", LabelRole+"="+string(RoleLastUse))})
	if err != nil {
		return nil, fmt.Errorf("list cache last-use markers: %w", err)
	}
	out := map[string]time.Time{}
	for _, c := range res.Items {
		if secs, err := strconv.ParseInt(c.Labels[LabelLastUsed], 10, 64); err == nil {
			out[c.Labels[LabelVolume]] = time.Unix(secs, 0)
		}
	}
	return out, nil
}

// removeOrphanMarkers removes the last-use markers of volumes that no
// longer exist (removed by hand).
func (e *docker) removeOrphanMarkers(ctx context.Context, lastUse map[string]time.Time, volumes []volume.Volume) {
	exists := map[string]bool{}
	for _, v := range volumes {
		exists[v.Name] = true
	}
	for name := range lastUse {
		if !exists[name] {
			e.removeMarker(ctx, lastUseMarkerName(name))
		}
	}
}

// removeCacheVolume removes a project cache volume no container uses, and
// its last-use marker.
func (e *docker) removeCacheVolume(ctx context.Context, v CacheVolume) error {
	name := v.Name
	if _, err := e.api.VolumeRemove(ctx, name, client.VolumeRemoveOptions{}); err != nil {
		return fmt.Errorf("remove cache volume %s: %w", name, err)
	}
	e.removeMarker(ctx, lastUseMarkerName(name))
	return nil
}
