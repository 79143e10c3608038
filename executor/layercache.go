package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
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
)

func (id Identity) layerVolume(slot int) string {
	return "dind-layers-" + id.ProjectKey + "-" + strconv.Itoa(slot)
}

// claimLayerVolume holds the project's first free cache slot for this
// sandbox and returns its volume, or "" when every slot is held. Creating a
// container with a fixed name is atomic in the Engine, so two jobs of one
// project starting at once never get the same data root.
func (e *docker) claimLayerVolume(ctx context.Context, p plan) (string, error) {
	id := p.Identity
	for slot := range layerSlots {
		volume := id.layerVolume(slot)
		labels := id.Labels(RoleClaim)
		labels[LabelLayerVolume] = volume
		labels[LabelLayerMaxBytes] = strconv.FormatInt(p.LayerCache.MaxBytes, 10)
		held, err := e.createMarker(ctx, marker{name: volume + "-claim", image: p.Daemon.Image.Name, labels: labels})
		if err != nil {
			return "", fmt.Errorf("claim layer cache slot %s: %w", volume, err)
		}
		if !held {
			continue // another job of the project holds this slot
		}
		if err := e.createVolume(ctx, volume, id.projectVolumeLabels(RoleLayers)); err != nil {
			return "", err
		}
		return volume, nil
	}
	return "", nil
}

// pruneScript runs inside the daemon container before teardown: it drops
// stopped containers, then, while the data root is over the cap, the
// oldest images.
const pruneScript = `max_kib=$(($1 / 1024))
docker container prune -f >/dev/null 2>&1
used() { du -sxk /var/lib/docker | cut -f1; }
removed=0
if [ "$max_kib" -gt 0 ] && [ "$(used)" -gt "$max_kib" ]; then
  docker builder prune -af >/dev/null 2>&1 || true
  for img in $(docker image ls -q --no-trunc --format '{{.CreatedAt}} {{.ID}}' | sort | awk '{print $NF}'); do
    [ "$(used)" -le "$max_kib" ] && break
    docker image rm -f "$img" >/dev/null 2>&1 && removed=$((removed + 1))
  done
fi
echo "layer cache: $(($(used) / 1024)) MiB kept, $removed images pruned (cap $(($max_kib / 1024)) MiB)"`

// releaseLayerCache readies a sandbox's layer volume for the project's
// next job: it prunes it to its cap and stops the daemon cleanly, so the
// data root is consistent when the next daemon opens it, and records the
// volume's last use for gc --caches. Teardown then removes the claim with
// the sandbox's other containers.
func (e *docker) releaseLayerCache(ctx context.Context, sandboxID SandboxID) (string, error) {
	claims, err := e.api.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: client.Filters{}.Add("label", LabelSandbox+"="+string(sandboxID)).Add("label", LabelRole+"="+string(RoleClaim)).Add("label", LabelLayerVolume)})
	if err != nil || len(claims.Items) == 0 {
		return "", err
	}
	claim := claims.Items[0]
	e.stampVolumeUse(ctx, claim.Labels[LabelLayerVolume], claim.ImageID, claim.Labels)
	maxBytes := claim.Labels[LabelLayerMaxBytes]
	daemon := sandboxID.Name(RoleDaemon)
	var out bytes.Buffer
	var errs []error
	if err := e.execDetached(ctx, daemon, []string{"sh", "-c", pruneScript, "prune", maxBytes}, &out); err != nil && !cerrdefs.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("prune layer cache in %s: %w", daemon, err))
	}
	stopWait := int(daemonStopWait.Seconds())
	if _, err := e.api.ContainerStop(ctx, daemon, client.ContainerStopOptions{Timeout: &stopWait}); err != nil && !cerrdefs.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("stop daemon %s: %w", daemon, err))
	}
	return strings.TrimSpace(out.String()), errors.Join(errs...)
}

// execDetached runs cmd as root in a running container and collects its
// output; a non-zero exit is an error.
func (e *docker) execDetached(ctx context.Context, containerName string, cmd []string, out io.Writer) error {
	created, err := e.api.ExecCreate(ctx, containerName, client.ExecCreateOptions{User: "0", AttachStdout: true, AttachStderr: true, Cmd: cmd})
	if err != nil {
		return err
	}
	attached, err := e.api.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return err
	}
	defer attached.Close()
	if _, err := stdcopyBoth(out, attached.Reader); err != nil {
		return err
	}
	code, err := e.execExitCode(ctx, created.ID)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("%s exited with code %d: %s", cmd[0], code, out)
	}
	return nil
}
