package executor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	"gitlab.com/dind-executor/dind-executor/executor/innerdaemon"
)

// LayerCache, set in a Spec, keeps the daemon's data root on a volume that
// belongs to the job's project, so its next job starts with the layers.
type LayerCache struct {
	// MaxBytes caps the volume: at teardown the oldest images are pruned
	// until it fits. 0: no cap.
	MaxBytes int64
}

const (
	// layerSlots is how many jobs of one project can each hold a cache
	// volume at once; a job beyond that starts with an empty data root.
	layerSlots     = 4
	daemonStopWait = 20 * time.Second
	// layerCleanLimit bounds asking the job's daemon to clean up: that
	// daemon is the job's, and one that stops answering (SIGSTOPped by the
	// job, or not a dockerd at all) must only cost the volume, not the
	// teardown.
	layerCleanLimit = 90 * time.Second
	// layerReleaseLimit bounds each of the outer Engine's steps after the
	// cleaning (stop, remove, discard), which run even when the teardown's
	// own deadline was spent waiting for the job's daemon.
	layerReleaseLimit = daemonStopWait + 30*time.Second
	// maxDaemonWords bounds what of the job's daemon's errors reaches the
	// cleanup's output.
	maxDaemonWords = 1 << 10
)

func (id Identity) layerVolume(slot int) string {
	return "dind-layers-" + id.ProjectKey + "-" + strconv.Itoa(slot)
}

// claimLayerVolume holds the project's first free cache slot for this
// sandbox and returns its volume, or "" when every slot is held. Creating a
// container with a fixed name is atomic in the Engine, so two jobs of one
// project starting at once never get the same data root. notes are for
// the job log: a volume removed because its last job did not leave it
// clean, a slot passed over (passed) because its volume could be neither
// handed on nor removed.
func (e *docker) claimLayerVolume(ctx context.Context, p plan) (volume string, notes []string, passed bool, err error) {
	id := p.Identity
	// The claim and last-use markers are made of the operator's helper
	// image, by id: the volume's scrub at release runs in the claim's
	// image, and the daemon image may be a job's pin, whose rm and du
	// would be the job's.
	image, _ := p.HelperImage.createRef()
	for slot := range layerSlots {
		volume = id.layerVolume(slot)
		labels := id.Labels(RoleClaim)
		labels[LabelLayerVolume] = volume
		labels[LabelLayerMaxBytes] = strconv.FormatInt(p.LayerCache.MaxBytes, 10)
		held, err := e.createMarker(ctx, marker{name: volume + "-claim", image: image, labels: labels})
		if err != nil {
			return "", notes, passed, fmt.Errorf("claim layer cache slot %s: %w", volume, err)
		}
		if !held {
			continue // another job of the project holds this slot
		}
		removed, err := e.takeCleanLayers(ctx, volume, image, labels)
		if removed {
			notes = append(notes, fmt.Sprintf("%s was not left clean by its last job (its cleanup did not finish): removed, this job's daemon starts empty", volume))
		}
		if err != nil {
			// Its last job's volume could be neither cleaned nor removed
			// (files it made immutable): the slot stays unused until an
			// operator removes the volume.
			e.log.WithError(err).WithField("volume", volume).Warn("layer cache slot skipped")
			notes = append(notes, "skipped: "+err.Error())
			passed = true
			e.removeMarker(ctx, volume+"-claim")
			continue
		}
		if err := e.createVolume(ctx, volume, id.projectVolumeLabels(RoleLayers)); err != nil {
			return "", notes, passed, err
		}
		return volume, notes, passed, nil
	}
	return "", notes, passed, nil
}

// takeCleanLayers makes a claimed slot's volume fit to hand on: one that
// its last release did not stamp clean (a cleanup that never finished, a
// discard that failed, a volume from before the stamp) is removed, so the
// slot starts empty. The stamp is taken back at once: the volume is this
// job's now, and only its own release stamps it clean again.
func (e *docker) takeCleanLayers(ctx context.Context, volume, image string, owner map[string]string) (removed bool, err error) {
	if _, err := e.api.VolumeInspect(ctx, volume, client.VolumeInspectOptions{}); cerrdefs.IsNotFound(err) {
		return false, nil
	}
	marker, err := e.api.ContainerInspect(ctx, lastUseMarkerName(volume), client.ContainerInspectOptions{})
	clean := err == nil && marker.Container.Config != nil && marker.Container.Config.Labels[LabelLayersClean] == "true"
	e.stampVolumeUse(ctx, volume, image, owner, false)
	if clean {
		return false, nil
	}
	if _, err := e.api.VolumeRemove(ctx, volume, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return false, fmt.Errorf("%s was not left clean by its last job and cannot be removed (an operator must remove it): %w", volume, err)
	}
	return true, nil
}

// layerClaim finds the layer cache claim among a sandbox's containers.
func layerClaim(containers []container.Summary) (container.Summary, bool) {
	for _, c := range containers {
		if Role(c.Labels[LabelRole]) == RoleClaim && c.Labels[LabelLayerVolume] != "" {
			return c, true
		}
	}
	return container.Summary{}, false
}

// releaseLayerCache readies a sandbox's layer volume for the project's
// next job, through the daemon's API over mutual TLS (never by running
// a program in the daemon container, whose files the job controls): it
// removes every container the job left (running or not, whatever its
// restart policy), prunes images to the cap, and stops the daemon cleanly
// so the data root is consistent when the next daemon opens it. It records
// the volume's last use for gc --caches. When the daemon cannot be
// cleaned, the volume is discarded rather than handed to the next job.
// Teardown then removes the claim with the sandbox's other containers.
func (e *docker) releaseLayerCache(ctx context.Context, id SandboxID, claim container.Summary, inner *client.Client, innerErr error) (string, error) {
	volume := claim.Labels[LabelLayerVolume]
	maxBytes, _ := strconv.ParseInt(claim.Labels[LabelLayerMaxBytes], 10, 64)
	e.stampVolumeUse(ctx, volume, claim.ImageID, claim.Labels, false)
	summary, cleanErr := "", innerErr
	if inner != nil {
		cctx, cancel := context.WithTimeout(ctx, layerCleanLimit)
		summary, cleanErr = cleanLayerDaemon(cctx, inner, maxBytes)
		cancel()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), layerReleaseLimit)
	defer cancel()
	daemon := id.Name(RoleDaemon)
	if cleanErr == nil {
		// A clean stop, so the data root is consistent for the next
		// daemon; one whose volume is discarded is only removed.
		stopWait := int(daemonStopWait.Seconds())
		if _, err := e.api.ContainerStop(ctx, daemon, client.ContainerStopOptions{Timeout: &stopWait}); err != nil && !cerrdefs.IsNotFound(err) {
			cleanErr = fmt.Errorf("stop daemon %s: %w", daemon, err)
		} else {
			// The daemon's answers said it is clean; the volume itself
			// is what the next daemon opens.
			size, err := e.scrubLayerVolume(ctx, id, volume, claim.ImageID, claim.Labels)
			switch {
			case err != nil:
				cleanErr = fmt.Errorf("prune the volume to its layers: %w", err)
			case maxBytes > 0 && size > maxBytes+maxBytes/4:
				cleanErr = fmt.Errorf("it holds %d MiB on disk after cleaning, over its cap of %d MiB", size>>20, maxBytes>>20)
			default:
				e.stampVolumeUse(ctx, volume, claim.ImageID, claim.Labels, true)
				return fmt.Sprintf("%s, %d MiB on disk", summary, size>>20), nil
			}
		}
	}
	// What the job's daemon said goes into the cleanup's output.
	cleanErr = errors.New(innerdaemon.Printable(cleanErr.Error(), maxDaemonWords))
	// The volume is mounted by the daemon until it is removed.
	if _, err := e.api.ContainerRemove(ctx, daemon, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("layer cache %s could not be cleaned (%v) and its daemon not removed: %w", volume, cleanErr, err)
	}
	if err := e.removeCacheVolume(ctx, CacheVolume{Name: volume}); err != nil {
		return "", fmt.Errorf("layer cache %s could not be cleaned (%v) nor discarded: %w", volume, cleanErr, err)
	}
	return fmt.Sprintf("layer cache %s discarded: it could not be cleaned for the next job (%v)", volume, cleanErr), nil
}

// cleanLayerDaemon removes every container of the job's daemon and prunes
// its images, oldest first, until images and build cache fit maxBytes
// (0: no cap).
func cleanLayerDaemon(ctx context.Context, inner *client.Client, maxBytes int64) (string, error) {
	containers, err := inner.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return "", fmt.Errorf("list the daemon's containers: %w", err)
	}
	for _, c := range containers.Items {
		if _, err := inner.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("remove container %s of the job's daemon: %w", c.ID, err)
		}
	}
	used, err := layerBytes(ctx, inner)
	if err != nil {
		return "", err
	}
	pruned := 0
	if maxBytes > 0 && used > maxBytes {
		if _, err := inner.BuildCachePrune(ctx, client.BuildCachePruneOptions{All: true}); err != nil {
			return "", fmt.Errorf("prune the build cache: %w", err)
		}
		images, err := inner.ImageList(ctx, client.ImageListOptions{All: false})
		if err != nil {
			return "", fmt.Errorf("list the daemon's images: %w", err)
		}
		slices.SortFunc(images.Items, func(a, b image.Summary) int { return cmp.Compare(a.Created, b.Created) })
		for _, img := range images.Items {
			if used, err = layerBytes(ctx, inner); err != nil || used <= maxBytes {
				break
			}
			if _, err := inner.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err == nil {
				pruned++
			}
		}
		if err != nil {
			return "", err
		}
		if used, err = layerBytes(ctx, inner); err != nil {
			return "", err
		}
	}
	// Checked again: nothing of the job may be left to run in the next one.
	left, err := inner.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return "", fmt.Errorf("list the daemon's containers: %w", err)
	}
	if len(left.Items) > 0 {
		return "", fmt.Errorf("%d containers appeared in the job's daemon while it was cleaned", len(left.Items))
	}
	return fmt.Sprintf("layer cache: %d MiB kept, %d images pruned (cap %d MiB)", used>>20, pruned, maxBytes>>20), nil
}

// layerBytes is what the daemon's images and build cache take.
func layerBytes(ctx context.Context, inner *client.Client) (int64, error) {
	du, err := inner.DiskUsage(ctx, client.DiskUsageOptions{Images: true, BuildCache: true})
	if err != nil {
		return 0, fmt.Errorf("disk usage of the job's daemon: %w", err)
	}
	return du.Images.TotalSize + du.BuildCache.TotalSize, nil
}
