package executor

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor/containerfs"
	"gitlab.com/dind-executor/dind-executor/executor/innerdaemon"
	"gitlab.com/dind-executor/dind-executor/executor/tlsca"
)

// MaxProduced bounds how many images and containers Produced reports: a
// job could make thousands, the audit trail keeps a useful first part.
const MaxProduced = 200

// Produced is what a sandbox's own daemon holds: the images the job built,
// tagged, pulled or pushed, and the containers it ran. The job controls that
// daemon, so this is what the daemon reports, not proof of what happened.
type Produced struct {
	Images     []ProducedImage
	Containers []ProducedContainer
	Truncated  bool // more than MaxProduced of either
}

// ProducedImage is one image of the job's daemon.
type ProducedImage struct {
	ID          string
	Tags        []string
	RepoDigests []string // set once pushed to (or pulled from) a registry
	Created     time.Time
	Size        int64
}

// ProducedContainer is one container the job ran on its daemon.
type ProducedContainer struct {
	ID       string
	Name     string
	Image    string
	ImageID  string
	State    string
	ExitCode int
}

// produced asks the sandbox's daemon, over mutual TLS with the job's own
// client certificate (read from the build container through the Engine
// API, in memory only), what it holds. It must run before teardown.
func (e *docker) produced(ctx context.Context, id SandboxID) (Produced, error) {
	inner, err := e.innerClient(ctx, id)
	if err != nil {
		return Produced{}, err
	}
	defer inner.Close()
	return askProduced(ctx, inner)
}

// askProduced lists what the daemon inner reaches holds, bounded by
// MaxProduced.
func askProduced(ctx context.Context, inner *client.Client) (Produced, error) {
	var p Produced
	images, err := inner.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		return Produced{}, fmt.Errorf("list images of the job's daemon: %w", err)
	}
	slices.SortFunc(images.Items, func(a, b image.Summary) int { return cmp.Compare(a.Created, b.Created) })
	for i, img := range images.Items {
		if i == MaxProduced {
			p.Truncated = true
			break
		}
		p.Images = append(p.Images, ProducedImage{
			ID: img.ID, Tags: withoutNone(img.RepoTags), RepoDigests: withoutNone(img.RepoDigests),
			Created: time.Unix(img.Created, 0).UTC(), Size: img.Size,
		})
	}

	containers, err := inner.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return p, fmt.Errorf("list containers of the job's daemon: %w", err)
	}
	for i, c := range containers.Items {
		if i == MaxProduced {
			p.Truncated = true
			break
		}
		pc := ProducedContainer{ID: c.ID, Name: containerName(c.Names, c.ID), Image: c.Image, ImageID: c.ImageID, State: string(c.State)}
		// The list has no exit code; inspect says it.
		if res, err := inner.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{}); err == nil && res.Container.State != nil {
			pc.ExitCode = res.Container.State.ExitCode
		}
		p.Containers = append(p.Containers, pc)
	}
	return p, nil
}

// innerClient is an Engine API client for the sandbox's daemon. The
// daemon must prove it holds a certificate of the CA pinned in its label
// when the executor made it; the client certificate is the job's, read
// from the build container (bounded: the job can have put anything there),
// and held in memory only.
func (e *docker) innerClient(ctx context.Context, id SandboxID) (*client.Client, error) {
	name := id.Name(RoleDaemon)
	res, err := e.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("inspect daemon container %s: %w", name, err)
	}
	if st := res.Container.State; st != nil && !st.Running {
		return nil, fmt.Errorf("daemon container %s is not running (exit code %d)", name, st.ExitCode)
	}
	if res.Container.Config == nil || res.Container.Config.Labels[LabelCA] == "" {
		return nil, fmt.Errorf("daemon container %s has no pinned CA label: made by an older version", name)
	}
	caPEM := []byte(res.Container.Config.Labels[LabelCA])
	files, err := containerfs.ReadNamed(ctx, e.api, id.Name(RoleBuild), ClientCertDir, "cert.pem", "key.pem")
	if err != nil {
		return nil, fmt.Errorf("the job's client certificate: %w", err)
	}
	tlsConfig, err := tlsca.ClientTLSConfig(caPEM, tlsca.PEMPair{Cert: files["cert.pem"], Key: files["key.pem"]})
	if err != nil {
		return nil, fmt.Errorf("the job's client certificate in %s: %w", id.Name(RoleBuild), err)
	}
	return innerdaemon.Client(daemonTLSAddr, tlsConfig, e.daemonDialer(id, relayConnectWait))
}

// withoutNone drops the "<none>:<none>" placeholders older Engines list.
func withoutNone(refs []string) []string {
	var out []string
	for _, r := range refs {
		if r != "<none>:<none>" && r != "<none>@<none>" {
			out = append(out, r)
		}
	}
	return out
}
