package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor/innerdaemon"
	"gitlab.com/dind-executor/dind-executor/executor/tlsca"
)

// Sandbox describes a prepared sandbox, from the executor's own memory.
type Sandbox struct {
	Identity Identity
	Engine   string // the Engine it is on, as [engine] names it
	// Placement says why this Engine, when there were several to choose
	// from; empty with one Engine.
	Placement  string
	Network    string
	MTU        int               // 0 when the daemon came from the pool
	Images     map[string]string // image name -> image id
	CA         CertInfo          // the CA the daemon trusts, made for this sandbox
	ReadyAfter time.Duration     // from daemon start to the first authenticated ping
	FromPool   SandboxID         // the pooled sandbox whose daemon this job took, if any
	DataRoot   string            // the project's layer cache volume, when the daemon uses one
	// PlainNetwork is the network of the daemon and the build container
	// alone, where a job written with TLS off reaches port 2375.
	PlainNetwork string
}

// CertInfo identifies a certificate, for the audit trail.
type CertInfo = tlsca.CertInfo

// prepare builds the sandbox of p and returns once its daemon answers an
// authenticated /_ping. On error, whatever was created stays for teardown.
func (e *docker) prepare(ctx context.Context, p plan) (*Sandbox, error) {
	id := p.Identity
	if err := id.SandboxID.Validate(); err != nil {
		return nil, err
	}
	log := p.Log
	if log == nil {
		log = io.Discard
	}
	if err := e.ping(ctx); err != nil {
		return nil, err
	}
	// Whether a pooled daemon can serve is decided before the job's
	// request is merged into the operator's settings.
	pooled := p.mayTakePooled()
	p, notes := p.withDaemonRequest()
	for _, n := range notes {
		fmt.Fprintf(log, "Daemon: %s\n", n)
	}
	sb := &Sandbox{Identity: id, Engine: e.endpoint, Images: map[string]string{}}

	images := []ImageRef{p.daemonImage(), p.BuildImage, p.HelperImage}
	for _, svc := range p.Services {
		images = append(images, svc.Image)
	}
	for _, img := range images {
		if _, done := sb.Images[img.Name]; done {
			continue
		}
		imageID, err := e.ensureImage(ctx, img, log)
		if err != nil {
			return nil, err
		}
		sb.Images[img.Name] = imageID
	}
	p = p.pinned(sb.Images)

	var daemon *jobDaemon
	var err error
	if pooled {
		if daemon, err = e.claimPooled(ctx, p); err != nil {
			return nil, err
		}
	}
	if daemon != nil {
		fmt.Fprintf(log, "Took a warm daemon from the pool (pooled sandbox %s, started %s ago)\n", daemon.poolID, time.Since(daemon.started).Round(time.Second))
	} else {
		dataRoot, err := e.dataRoot(ctx, p, log)
		if err != nil {
			return nil, err
		}
		if daemon, err = e.startDaemon(ctx, p, id.Labels, dataRoot, false, log); err != nil {
			return nil, err
		}
	}
	sb.DataRoot, sb.MTU = daemon.layerCache, daemon.mtu
	sb.Network, sb.FromPool, sb.PlainNetwork = daemon.network, daemon.poolID, daemon.plain.network
	if sb.CA, err = tlsca.InfoPEM(daemon.caPEM); err != nil {
		return nil, fmt.Errorf("the daemon's CA certificate: %w", err)
	}

	// The readiness ping starts now: its relay waits in the daemon
	// container while the rest is made, and answers when dockerd serves.
	ready := e.startWaitReady(ctx, id.SandboxID, daemon.tls, p.Daemon.ReadyTimeout)
	defer ready.abandon()

	if err := e.mark(ctx, id); err != nil {
		return nil, err
	}
	if err := e.createVolume(ctx, id.CacheVolume(), id.cacheVolumeLabels()); err != nil {
		return nil, err
	}

	// Services and job containers are made while dockerd boots (that is
	// most of prepare's time), all at once: none of them needs the daemon
	// or another to start.
	if err := e.startJobContainers(ctx, p, sb.Network, daemon); err != nil {
		return nil, err
	}

	version, readyAt, err := ready.result()
	if err != nil {
		return nil, err
	}
	sb.ReadyAfter = readyAt.Sub(daemon.started)
	if daemon.poolID == "" {
		fmt.Fprintf(log, "Starting TLS daemon... ready in %.1fs (mutual TLS, CA %s)\n", sb.ReadyAfter.Seconds(), sb.CA.Fingerprint[:16])
		if p.PlainTCP {
			fmt.Fprintf(log, "The job's variables turn TLS off: its daemon also answers plain tcp://docker:%d, to the build container only (network %s)\n", DaemonPlainPort, sb.PlainNetwork)
		}
	} else {
		fmt.Fprintf(log, "Warm TLS daemon ready (mutual TLS, CA %s)\n", sb.CA.Fingerprint[:16])
	}
	fmt.Fprintf(log, "Daemon: %s, image %s\n", describeVersion(version), p.Daemon.Image.Name)

	if err := e.checkRunning(ctx, id.SandboxID, RoleBuild, RoleHelper); err != nil {
		return nil, err
	}
	e.waitServices(ctx, p, sb.Network, log)
	return sb, nil
}

// mayTakePooled reports whether a pooled daemon can serve p. A pooled
// daemon answers only as docker, over mutual TLS, its data root is its own
// and it was made with the operator's settings alone: a job that needs
// more names, a plain endpoint, the project's layers or asks anything of
// its daemon (flags, variables dockerd reads, an image) starts one.
func (p plan) mayTakePooled() bool {
	return p.PoolSize > 0 && p.LayerCache == nil && len(p.DaemonAliases) == 0 && !p.PlainTCP && p.DaemonRequest.IsZero()
}

// startJobContainers creates and starts the build and helper containers
// and the services in parallel; the build container gets the client
// certificate, owned by the build user so a non-root job can read its key.
func (e *docker) startJobContainers(ctx context.Context, p plan, network string, daemon *jobDaemon) error {
	build := buildContainer(p, network)
	if p.PlainTCP {
		build = daemon.plain.build(build)
	}
	specs := []containerSpec{build, helperContainer(p, network)}
	for i := range p.Services {
		specs = append(specs, serviceContainer(p, network, i))
	}
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, c := range specs {
		wg.Go(func() {
			cid, err := e.createContainer(ctx, c)
			if err == nil && c.role == RoleBuild {
				err = e.copyFiles(ctx, cid, clientCertFiles(daemon.caPEM, daemon.client), true)
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

// dataRoot picks the volume for the daemon's /var/lib/docker: the
// project's layer cache when it is on and a slot is free, else a fresh
// volume of the sandbox.
func (e *docker) dataRoot(ctx context.Context, p plan, log io.Writer) (string, error) {
	id := p.Identity
	if p.LayerCache == nil || id.ProjectKey == "" {
		return id.Name(RoleDataRoot), nil
	}
	volume, notes, passed, err := e.claimLayerVolume(ctx, p)
	if err != nil {
		return "", err
	}
	for _, note := range notes {
		fmt.Fprintf(log, "Layer cache: %s\n", innerdaemon.Printable(note, maxDaemonWords)) // the Engine quotes file names the job chose
	}
	if volume == "" {
		fmt.Fprintf(log, "Layer cache: all %d cache volumes of this project are in use by other jobs; this job's daemon starts empty\n", layerSlots)
		return id.Name(RoleDataRoot), nil
	}
	if volume != id.layerVolume(0) && !passed {
		fmt.Fprintf(log, "Layer cache: another job of this project holds the first cache volume; this job uses %s\n", volume)
	} else if volume != id.layerVolume(0) {
		fmt.Fprintf(log, "Layer cache: this job uses %s\n", volume)
	} else {
		fmt.Fprintf(log, "Layer cache: the daemon's data root is the project's volume %s\n", volume)
	}
	return volume, nil
}

// checkRunning catches a job container whose entrypoint did not keep the
// command it was given running: every stage would fail later, less
// clearly. One look, no wait: the Engine can record such an exit late
// under load, and then the first stage's exec finds it (exitedAtStart).
func (e *docker) checkRunning(ctx context.Context, id SandboxID, roles ...Role) error {
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
func (e *docker) exitedAtStart(ctx context.Context, name string, role Role) string {
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
