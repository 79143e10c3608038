package executor

import (
	"context"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// A marker is a never-started container whose name is the thing it
// stands for: a claim on a layer cache slot or a pooled daemon, the pool's
// fill lock, a cache volume's last use. Creating a name is atomic in the
// Engine, so two processes can never both hold one; and its labels carry
// the facts, so nothing is read from or written to a volume the job can
// touch.
type marker struct {
	name   string
	image  string // any local image: a marker never runs
	labels map[string]string
	// staleAfter, when set, lets a marker older than this be taken over:
	// its holder was killed without removing it.
	staleAfter time.Duration
}

// createMarker creates m and reports whether it did; false, nil means
// another holder has it.
func (e *docker) createMarker(ctx context.Context, m marker) (bool, error) {
	create := func() error {
		_, err := e.api.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name:       m.name,
			Config:     &container.Config{Image: m.image, Entrypoint: []string{"true"}, Labels: m.labels},
			HostConfig: &container.HostConfig{NetworkMode: "none"},
		})
		return err
	}
	err := create()
	if cerrdefs.IsConflict(err) && m.staleAfter > 0 && e.markerOlderThan(ctx, m.name, m.staleAfter) {
		e.removeMarker(ctx, m.name)
		err = create()
	}
	switch {
	case cerrdefs.IsConflict(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("create marker %s: %w", m.name, err)
	}
	return true, nil
}

// replaceMarker makes m hold the newest labels, whoever made it before.
func (e *docker) replaceMarker(ctx context.Context, m marker) error {
	e.removeMarker(ctx, m.name)
	if _, err := e.createMarker(ctx, m); err != nil {
		return err
	}
	return nil
}

func (e *docker) markerOlderThan(ctx context.Context, name string, age time.Duration) bool {
	held, err := e.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return false
	}
	created, err := time.Parse(time.RFC3339Nano, held.Container.Created)
	return err == nil && time.Since(created) > age
}

// removeMarker removes a marker; one already gone is fine.
func (e *docker) removeMarker(ctx context.Context, name string) {
	_, _ = e.api.ContainerRemove(context.WithoutCancel(ctx), name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
}
