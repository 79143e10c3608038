package executor

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor/tlsca"
)

// Sandbox describes a prepared sandbox.
type Sandbox struct {
	Identity      Identity
	Network       string
	MTU           int
	Images        map[string]string // image name -> image id
	CAFingerprint string
	CertsNotAfter time.Time
	ReadyAfter    time.Duration // from daemon start to the first authenticated ping
}

// Prepare builds the sandbox for s and returns once its daemon answers an
// authenticated /_ping. On error, whatever was created stays for Teardown.
func (e *Engine) Prepare(ctx context.Context, s Spec) (*Sandbox, error) {
	if err := s.Identity.Validate(); err != nil {
		return nil, err
	}
	log := s.Log
	if log == nil {
		log = io.Discard
	}
	id := s.Identity
	if err := e.Ping(ctx); err != nil {
		return nil, err
	}
	sb := &Sandbox{Identity: id, Images: map[string]string{}}

	images := []ImageRef{s.DaemonImage, s.BuildImage, s.HelperImage}
	for _, svc := range s.Services {
		images = append(images, svc.Image)
	}
	for _, img := range images {
		if _, done := sb.Images[img.Name]; done {
			continue
		}
		imageID, err := e.EnsureImage(ctx, img, log)
		if err != nil {
			return nil, err
		}
		sb.Images[img.Name] = imageID
	}

	certs, err := tlsca.New(id.SandboxID, s.CertLifetime)
	if err != nil {
		return nil, fmt.Errorf("make job certificates: %w", err)
	}
	sb.CAFingerprint, sb.CertsNotAfter = certs.Fingerprint(), certs.NotAfter
	clientTLS, err := certs.ClientTLSConfig()
	if err != nil {
		return nil, err
	}

	sb.MTU = s.MTU
	if sb.MTU == 0 {
		if sb.MTU, err = e.outerMTU(ctx); err != nil {
			return nil, err
		}
	}
	if sb.Network, err = e.createNetwork(ctx, id, sb.MTU); err != nil {
		return nil, err
	}
	dataRoot, err := e.dataRoot(ctx, s, log)
	if err != nil {
		return nil, err
	}
	volumes := map[string]map[string]string{
		id.Name(RoleBuilds): id.Labels(RoleBuilds),
		id.CacheVolume():    id.cacheVolumeLabels(),
	}
	if dataRoot == id.Name(RoleDataRoot) {
		volumes[dataRoot] = id.Labels(RoleDataRoot)
	}
	for name, labels := range volumes {
		if _, err := e.createVolume(ctx, name, labels); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(log, "Created network %s (MTU %d) and volumes for sandbox %s (cache volume %s)\n", sb.Network, sb.MTU, id.SandboxID, id.CacheVolume())

	daemon := daemonContainer(s, sb.Network, sb.MTU, dataRoot)
	daemonID, err := e.createContainer(ctx, daemon)
	if err != nil {
		return nil, err
	}
	if err := e.copyFiles(ctx, daemonID, daemonCertFiles(certs), false); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "Starting TLS daemon %s (%s)...\n", daemon.name, s.DaemonSecurity)
	started := time.Now()
	if err := e.startContainer(ctx, daemonID, daemon); err != nil {
		return nil, err
	}

	// Services and job containers are made while dockerd boots: that is
	// most of prepare's time, and none of them needs the daemon to start.
	if err := e.startServices(ctx, s, sb.Network); err != nil {
		return nil, err
	}
	for _, c := range []containerSpec{buildContainer(s, sb.Network), helperContainer(s, sb.Network)} {
		cid, err := e.createContainer(ctx, c)
		if err != nil {
			return nil, err
		}
		if c.role == RoleBuild {
			// Owned by the build user, so a non-root job can read its key.
			if err := e.copyFiles(ctx, cid, clientCertFiles(certs), true); err != nil {
				return nil, err
			}
		}
		if err := e.startContainer(ctx, cid, c); err != nil {
			return nil, err
		}
	}

	if err := e.waitReady(ctx, id, clientTLS, s.ReadyTimeout); err != nil {
		return nil, err
	}
	sb.ReadyAfter = time.Since(started)
	fmt.Fprintf(log, "Starting TLS daemon... ready in %.1fs (mutual TLS, CA %s, valid until %s)\n",
		sb.ReadyAfter.Seconds(), sb.CAFingerprint[:16], sb.CertsNotAfter.UTC().Format(time.RFC3339))

	if err := e.checkRunning(ctx, id, RoleBuild, RoleHelper); err != nil {
		return nil, err
	}
	e.waitServices(ctx, s, sb.Network, log)
	return sb, nil
}

// dataRoot picks the volume for the daemon's /var/lib/docker: the
// project's layer cache when it is on and a slot is free, else a fresh
// volume of the sandbox.
func (e *Engine) dataRoot(ctx context.Context, s Spec, log io.Writer) (string, error) {
	id := s.Identity
	if s.LayerCache == nil || id.ProjectKey == "" {
		return id.Name(RoleDataRoot), nil
	}
	volume, err := e.claimLayerVolume(ctx, s)
	if err != nil {
		return "", err
	}
	if volume == "" {
		fmt.Fprintf(log, "Layer cache: all %d cache volumes of this project are in use by other jobs; this job's daemon starts empty\n", layerSlots)
		return id.Name(RoleDataRoot), nil
	}
	if volume != id.layerVolume(0) {
		fmt.Fprintf(log, "Layer cache: another job of this project holds the first cache volume; this job uses %s\n", volume)
	} else {
		fmt.Fprintf(log, "Layer cache: the daemon's data root is the project's volume %s\n", volume)
	}
	return volume, nil
}

// checkRunning catches a job container whose entrypoint did not keep the
// command it was given running: every stage would fail later, less clearly.
func (e *Engine) checkRunning(ctx context.Context, id Identity, roles ...Role) error {
	for _, role := range roles {
		name := id.Name(role)
		res, err := e.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspect %s container %s: %w", role, name, err)
		}
		if st := res.Container.State; st != nil && !st.Running {
			return fmt.Errorf("%s container %s exited with code %d right after start: its image's entrypoint must run the command it is given "+
				"(under the docker executor it would fail the same way); set the job's image entrypoint to [\"\"] to bypass it%s",
				role, name, st.ExitCode, e.logTail(name))
		}
	}
	return nil
}
