package executor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor/tlsca"
)

// Sandbox describes a prepared sandbox.
type Sandbox struct {
	Identity      Identity
	Network       string
	MTU           int               // 0 when the daemon came from the pool
	Images        map[string]string // image name -> image id
	CAFingerprint string
	CertsNotAfter time.Time
	ReadyAfter    time.Duration // from daemon start to the first authenticated ping
	FromPool      string        // the pooled sandbox whose daemon this job took, if any
	DataRoot      string        // the project's layer cache volume, when the daemon uses one
}

// jobDaemon is the daemon a job gets: started for it, or claimed from the
// warm pool.
type jobDaemon struct {
	network string
	caPEM   []byte
	client  tlsca.PEMPair
	tls     *tls.Config
	started time.Time
	poolID  string
	// layerCache is the project's layer volume the daemon's data root is.
	layerCache string
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

	var daemon *jobDaemon
	var err error
	if s.UsePool && s.LayerCache == nil {
		if daemon, err = e.claimPooled(ctx, s); err != nil {
			return nil, err
		}
	}
	if daemon != nil {
		fmt.Fprintf(log, "Took a warm daemon from the pool (pooled sandbox %s, started %s ago)\n", daemon.poolID, time.Since(daemon.started).Round(time.Second))
	} else if daemon, sb.MTU, err = e.startJobDaemon(ctx, s, log); err != nil {
		return nil, err
	}
	sb.DataRoot = daemon.layerCache
	sb.Network, sb.FromPool = daemon.network, daemon.poolID
	sb.CAFingerprint = tlsca.FingerprintPEM(daemon.caPEM)
	sb.CertsNotAfter = tlsca.NotAfterPEM(daemon.client.Cert)

	for name, labels := range map[string]map[string]string{
		id.Name(RoleBuilds): id.Labels(RoleBuilds),
		id.CacheVolume():    id.cacheVolumeLabels(),
	} {
		if _, err := e.createVolume(ctx, name, labels); err != nil {
			return nil, err
		}
	}

	// Services and job containers are made while dockerd boots (that is
	// most of prepare's time), all at once: none of them needs the daemon
	// or another to start.
	if err := e.startJobContainers(ctx, s, sb.Network, daemon); err != nil {
		return nil, err
	}

	if err := e.waitReady(ctx, id, daemon.tls, s.ReadyTimeout); err != nil {
		return nil, err
	}
	sb.ReadyAfter = time.Since(daemon.started)
	if daemon.poolID == "" {
		fmt.Fprintf(log, "Starting TLS daemon... ready in %.1fs (mutual TLS, CA %s)\n", sb.ReadyAfter.Seconds(), sb.CAFingerprint[:16])
	} else {
		fmt.Fprintf(log, "Warm TLS daemon ready (mutual TLS, CA %s)\n", sb.CAFingerprint[:16])
	}

	if err := e.checkRunning(ctx, id, RoleBuild, RoleHelper); err != nil {
		return nil, err
	}
	e.waitServices(ctx, s, sb.Network, log)
	return sb, nil
}

// startJobContainers creates and starts the build and helper containers
// and the services in parallel; the build container gets the client
// certificate, owned by the build user so a non-root job can read its key.
func (e *Engine) startJobContainers(ctx context.Context, s Spec, network string, daemon *jobDaemon) error {
	specs := []containerSpec{buildContainer(s, network), helperContainer(s, network)}
	for i := range s.Services {
		specs = append(specs, serviceContainer(s, network, i))
	}
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, c := range specs {
		wg.Go(func() {
			cid, err := e.createContainer(ctx, c)
			if err == nil && c.role == RoleBuild {
				err = e.copyFiles(ctx, cid, clientCertFilesOf(daemon.caPEM, daemon.client), true)
			}
			if err == nil {
				err = e.startContainer(ctx, cid, c)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startJobDaemon makes the job its own network, CA and daemon, and starts
// the daemon without waiting for it. It returns the MTU it chose.
func (e *Engine) startJobDaemon(ctx context.Context, s Spec, log io.Writer) (*jobDaemon, int, error) {
	id := s.Identity
	certs, err := tlsca.New(id.SandboxID, s.CertLifetime)
	if err != nil {
		return nil, 0, fmt.Errorf("make job certificates: %w", err)
	}
	clientTLS, err := certs.ClientTLSConfig()
	if err != nil {
		return nil, 0, err
	}
	mtu := s.MTU
	if mtu == 0 {
		if mtu, err = e.outerMTU(ctx); err != nil {
			return nil, 0, err
		}
	}
	network, err := e.createNetwork(ctx, id, mtu)
	if err != nil {
		return nil, 0, err
	}
	dataRoot, err := e.dataRoot(ctx, s, log)
	if err != nil {
		return nil, 0, err
	}
	if dataRoot == id.Name(RoleDataRoot) {
		if _, err := e.createVolume(ctx, dataRoot, id.Labels(RoleDataRoot)); err != nil {
			return nil, 0, err
		}
	}
	fmt.Fprintf(log, "Created network %s (MTU %d) and volumes for sandbox %s (cache volume %s)\n", network, mtu, id.SandboxID, id.CacheVolume())

	entrypoint, err := e.imageEntrypoint(ctx, s.DaemonImage.Name)
	if err != nil {
		return nil, 0, err
	}
	daemon := daemonContainer(s, network, mtu, dataRoot, entrypoint)
	daemonID, err := e.createContainer(ctx, daemon)
	if err != nil {
		return nil, 0, err
	}
	if err := e.copyFiles(ctx, daemonID, daemonCertFiles(certs), false); err != nil {
		return nil, 0, err
	}
	fmt.Fprintf(log, "Starting TLS daemon %s (%s, certificates valid until %s)...\n",
		daemon.name, s.DaemonSecurity, certs.NotAfter.UTC().Format(time.RFC3339))
	started := time.Now()
	if err := e.startContainer(ctx, daemonID, daemon); err != nil {
		return nil, 0, err
	}
	d := &jobDaemon{network: network, caPEM: certs.CACert, client: certs.Client, tls: clientTLS, started: started}
	if dataRoot != id.Name(RoleDataRoot) {
		d.layerCache = dataRoot
	}
	return d, mtu, nil
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
// command it was given running: every stage would fail later, less
// clearly. One look, no wait: the Engine can record such an exit late
// under load, and then the first stage's exec finds it (exitedAtStart).
func (e *Engine) checkRunning(ctx context.Context, id Identity, roles ...Role) error {
	for _, role := range roles {
		name := id.Name(role)
		res, err := e.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspect %s container %s: %w", role, name, err)
		}
		if st := res.Container.State; st != nil && !st.Running {
			return fmt.Errorf("%s%s", entrypointDroppedCommand(role, name, st.ExitCode), e.logTail(name))
		}
	}
	return nil
}

// entrypointExitWindow: a job container that stopped this soon after it
// started was stopped by no one: its entrypoint never ran the keep-alive
// command it was given.
const entrypointExitWindow = 2 * time.Second

func entrypointDroppedCommand(role Role, name string, code int) string {
	return fmt.Sprintf("%s container %s exited with code %d right after start: its image's entrypoint must run the command it is given "+
		"(under the docker executor it would fail the same way); set the job's image entrypoint to [\"\"] to bypass it", role, name, code)
}

// exitedAtStart explains a stopped container that a stage could not even
// exec into, when it stopped right after it started; "" otherwise.
func (e *Engine) exitedAtStart(ctx context.Context, name string, role Role) string {
	res, err := e.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil || res.Container.State == nil || res.Container.State.Running {
		return ""
	}
	st := res.Container.State
	started, err1 := time.Parse(time.RFC3339Nano, st.StartedAt)
	finished, err2 := time.Parse(time.RFC3339Nano, st.FinishedAt)
	if err1 != nil || err2 != nil || finished.Sub(started) > entrypointExitWindow {
		return ""
	}
	return entrypointDroppedCommand(role, name, st.ExitCode) + e.logTail(name)
}
