package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// layerKeep is what of a daemon's data root a layer cache is kept for: the
// image store and the storage drivers' layers, BuildKit's and the classic
// builder's caches, the managed containerd's content (its image store).
// Everything else (containers, plugins, volumes, networks, swarm, trust)
// is the job's state, which dockerd would bring back in the next job's
// daemon: a container planted there with a restart policy would start in
// it, out of its daemon's own listing until then.
var layerKeep = []string{"image", "overlay2", "fuse-overlayfs", "vfs", "btrfs", "zfs", "buildkit", "builder", "containerd", "engine-id"}

// layerScrubScript removes every other entry of /data, then prints the
// KiB the volume holds.
const layerScrubScript = `cd /data || exit 1
for e in * .[!.]* ..?*; do
  [ -e "$e" ] || [ -L "$e" ] || continue
  case " $* " in *" $e "*) [ -L "$e" ] || continue;; esac
  rm -rf -- "$e" || exit 1
done
du -skx /data | cut -f1`

// scrubLayerVolume leaves in the layer cache volume only layerKeep and
// returns the bytes it holds. It runs in a container of image, the claim's:
// the operator's helper image by id, not in the daemon container, whose
// files (rm and du included) the job controls, nor in the daemon's image,
// which a job may have pinned; without network, with only the rights
// removing files of any owner needs.
func (e *docker) scrubLayerVolume(ctx context.Context, id SandboxID, volume, image string, claimLabels map[string]string) (int64, error) {
	labels := maps.Clone(claimLabels)
	delete(labels, LabelLayerVolume)
	delete(labels, LabelLayerMaxBytes)
	labels[LabelRole] = string(RoleLayerScrub)
	name := id.Name(RoleLayerScrub)
	created, err := e.api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image: image, User: "0", Labels: labels,
			Entrypoint: append([]string{"sh", "-c", layerScrubScript, "layer-scrub"}, layerKeep...),
		},
		HostConfig: &container.HostConfig{
			NetworkMode: "none", Binds: []string{volume + ":/data"}, ReadonlyRootfs: true,
			Resources: scrubResources(),
			CapDrop:   []string{"ALL"}, CapAdd: []string{"DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER"},
			SecurityOpt: []string{"no-new-privileges"},
		},
	})
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", name, err)
	}
	// RemoveVolumes: the daemon image declares VOLUME /var/lib/docker,
	// which the Engine made an anonymous volume for.
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), layerReleaseLimit)
		defer cancel()
		e.api.ContainerRemove(rctx, created.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}()
	wait := e.api.ContainerWait(ctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := e.api.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return 0, fmt.Errorf("start %s: %w", name, err)
	}
	var code int64
	select {
	case res := <-wait.Result:
		code = res.StatusCode
	case err := <-wait.Error:
		return 0, fmt.Errorf("wait for %s: %w", name, err)
	}
	if code != 0 {
		return 0, fmt.Errorf("%s exited with code %d%s", name, code, e.logTail(name))
	}
	logs, err := e.api.ContainerLogs(ctx, created.ID, client.ContainerLogsOptions{ShowStdout: true})
	if err != nil {
		return 0, fmt.Errorf("read what %s printed: %w", name, err)
	}
	defer logs.Close()
	var out bytes.Buffer
	if _, err := stdcopyBoth(&out, io.LimitReader(logs, 4<<10)); err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("read what %s printed: %w", name, err)
	}
	kib, err := strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s did not print the volume's size: %w", name, err)
	}
	return kib << 10, nil
}

// scrubResources bound the scrub, which walks a tree the job made: du
// keeps every multiply-linked inode it meets, and a job can make millions.
// A scrub that hits them fails, and the volume is discarded.
func scrubResources() container.Resources {
	pids := int64(32)
	return container.Resources{Memory: 256 << 20, NanoCPUs: 1e9, PidsLimit: &pids}
}
