package executor

import (
	"context"
	"fmt"
	"io"
	"time"

	"gitlab.com/dind-executor/dind-executor/executor/tlsca"
)

// Sandbox describes a prepared sandbox.
type Sandbox struct {
	Identity      Identity
	Network       string
	MTU           int
	Images        map[Role]string // role -> image id
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
	sb := &Sandbox{Identity: id, Images: map[Role]string{}}

	for _, img := range []struct {
		role Role
		name string
	}{{RoleDaemon, s.DaemonImage}, {RoleBuild, s.BuildImage}, {RoleHelper, s.HelperImage}} {
		imageID, err := e.EnsureImage(ctx, img.name, s.Pull, log)
		if err != nil {
			return nil, fmt.Errorf("%s image: %w", img.role, err)
		}
		sb.Images[img.role] = imageID
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
	for _, role := range []Role{RoleBuilds, RoleCache, RoleDataRoot} {
		if _, err := e.createVolume(ctx, id, role); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(log, "Created network %s (MTU %d) and volumes for sandbox %s\n", sb.Network, sb.MTU, id.SandboxID)

	daemon := daemonContainer(s, sb.Network, sb.MTU)
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

	// The job containers are made while dockerd boots: that is most of
	// prepare's time, and they do not need the daemon until a stage runs.
	for _, c := range []containerSpec{buildContainer(s, sb.Network), helperContainer(s, sb.Network)} {
		cid, err := e.createContainer(ctx, c)
		if err != nil {
			return nil, err
		}
		if c.role == RoleBuild {
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
	return sb, nil
}
