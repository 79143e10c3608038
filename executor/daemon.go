package executor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"time"

	"gitlab.com/dind-executor/dind-executor/executor/tlsca"
)

// jobDaemon is a started sandbox daemon and what it takes to talk to it:
// started for the job, or claimed from the warm pool.
type jobDaemon struct {
	network string
	plain   plainEndpoint // set when the job is given a plain endpoint
	mtu     int           // 0 when claimed from the pool
	caPEM   []byte
	client  tlsca.PEMPair
	tls     *tls.Config
	started time.Time
	poolID  SandboxID // the pooled sandbox it came from, if any
	// layerCache is the project's layer volume the daemon's data root is.
	layerCache string
}

// startDaemon makes a daemon its own CA, network and data root, and starts
// it without waiting for it to answer. Prepare and the pool both use it;
// labels labels every object (the pool adds its own). dataRoot is the
// volume for /var/lib/docker: the sandbox's own (made here) or a project's
// layer cache volume (made by its claim). With clientCertsInDaemon the
// client certificate is also left in the daemon's DOCKER_TLS_CERTDIR, for
// the job that will claim a pooled daemon.
func (e *docker) startDaemon(ctx context.Context, p plan, labels func(Role) map[string]string, dataRoot string, clientCertsInDaemon bool, log io.Writer) (*jobDaemon, error) {
	id := p.Identity
	certs, err := tlsca.New(string(id.SandboxID), p.CertLifetime, p.DaemonAliases...)
	if err != nil {
		return nil, fmt.Errorf("make daemon certificates: %w", err)
	}
	clientTLS, err := certs.ClientTLSConfig()
	if err != nil {
		return nil, err
	}
	mtu := p.Daemon.MTU
	if mtu == 0 {
		if mtu, err = e.outerMTU(ctx); err != nil {
			return nil, err
		}
	}
	if p.Daemon.NetworkMTU > mtu {
		// The config can only check this against an explicit sandbox.mtu.
		fmt.Fprintf(log, "WARNING: [daemon] network_mtu = %d is larger than this sandbox network's MTU %d: packets that do not fit are dropped; set network_mtu to at most %d, or 0\n",
			p.Daemon.NetworkMTU, mtu, mtu)
	}
	if err := checkJobMTU(p.DaemonRequest.MTU, p.Daemon.NetworkMTU, mtu); err != nil {
		return nil, err
	}
	network, err := e.createNetwork(ctx, id.Name(RoleNetwork), mtu, labels(RoleNetwork), false)
	if err != nil {
		return nil, err
	}
	var plain plainEndpoint
	if p.PlainTCP {
		if plain, err = e.createPlainNetwork(ctx, id, mtu, labels(RolePlainNetwork)); err != nil {
			return nil, err
		}
	}
	if dataRoot == id.Name(RoleDataRoot) {
		if err := e.createVolume(ctx, dataRoot, labels(RoleDataRoot)); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(log, "Created network %s (MTU %d) and volumes for sandbox %s (cache volume %s)\n", network, mtu, id.SandboxID, id.CacheVolume())

	image, _ := p.Daemon.Image.createRef()
	entrypoint, dockerVersion, err := e.imageEntrypoint(ctx, image)
	if err != nil {
		return nil, err
	}
	p.Daemon.imageDockerVersion = dockerVersion
	if p.Daemon.Security == SecurityRootless {
		if dataRoot != id.Name(RoleDataRoot) {
			return nil, errors.New("the layer cache (cache.layers) is not supported with daemon_security = \"rootless\": a project's layer volume holds a root daemon's data root")
		}
		if p.Daemon.imageUser, err = e.rootlessImageUser(ctx, image, p.Daemon.Image.Name); err != nil {
			return nil, err
		}
	}
	if p.Daemon.olderThan(networkOptVersion) {
		fmt.Fprintf(log, "WARNING: daemon image %s is Docker %s, older than %d, which has no --default-network-opt: networks the job creates in its daemon take Docker's default MTU of 1500, not %d, unless made with docker network create -o com.docker.network.driver.mtu=%d\n",
			p.Daemon.Image.Name, dockerVersion, networkOptVersion, innerMTU(p.Daemon, p.DaemonRequest, mtu), innerMTU(p.Daemon, p.DaemonRequest, mtu))
	}
	settingFiles, err := daemonSettingFiles(p.Daemon)
	if err != nil {
		return nil, err
	}
	daemon := daemonContainer(p, network, mtu, dataRoot, entrypoint)
	if p.PlainTCP {
		daemon = plain.daemon(daemon)
	}
	maps.Copy(daemon.config.Labels, labels(RoleDaemon))
	daemon.config.Labels[LabelCA] = string(certs.CACert)
	daemonID, err := e.createContainer(ctx, daemon)
	if err != nil {
		return nil, err
	}
	files := append(daemonCertFiles(certs), settingFiles...)
	if clientCertsInDaemon {
		files = append(files, clientCertFiles(certs.CACert, certs.Client)...)
	}
	rootless := p.Daemon.Security == SecurityRootless
	if rootless {
		// The rootless daemon's user must read its key: the files are its.
		if err := e.rootlessCopyFiles(ctx, daemonID, p.Daemon.imageUser, append(files, rootlessFiles()...)); err != nil {
			return nil, err
		}
	} else if err := e.copyFiles(ctx, daemonID, files, false); err != nil {
		return nil, err
	}
	if p.PlainTCP {
		if err := e.copyRelay(ctx, daemonID, p.RelayBinary); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(log, "Starting TLS daemon %s (%s, certificates valid until %s)...\n",
		daemon.name, p.Daemon.Security, certs.NotAfter.UTC().Format(time.RFC3339))
	started := time.Now()
	if err := e.startContainer(ctx, daemonID, daemon); err != nil {
		return nil, err
	}
	if rootless {
		if err := e.rootlessOpenTun(ctx, daemonID); err != nil {
			// The daemon's own checks may have ended it first: say why.
			return nil, e.rootlessExitReason(ctx, id.SandboxID, err)
		}
	}
	d := &jobDaemon{network: network, plain: plain, mtu: mtu, caPEM: certs.CACert, client: certs.Client, tls: clientTLS, started: started}
	if dataRoot != id.Name(RoleDataRoot) {
		d.layerCache = dataRoot
	}
	return d, nil
}

// innerMTU is the MTU of the daemon's own bridges: the job's --mtu, else
// [daemon] network_mtu, else the sandbox network's.
func innerMTU(d DaemonSpec, r DaemonRequest, sandboxMTU int) int {
	switch {
	case r.MTU > 0:
		return r.MTU
	case d.NetworkMTU > 0:
		return d.NetworkMTU
	}
	return sandboxMTU
}

// checkJobMTU refuses a job's --mtu larger than what its daemon's networks
// may carry: [daemon] network_mtu when the operator set it, else the
// sandbox network's MTU. Larger packets would be dropped on the way out.
func checkJobMTU(jobMTU, networkMTU, sandboxMTU int) error {
	bound, what := sandboxMTU, "the sandbox network's MTU"
	if networkMTU > 0 && networkMTU < bound {
		bound, what = networkMTU, "the runner's [daemon] network_mtu"
	}
	if jobMTU > bound {
		return fmt.Errorf("the job's dind service asks for --mtu=%d, larger than %s (%d): packets that do not fit would be dropped; use --mtu=%d or less, or remove --mtu",
			jobMTU, what, bound, bound)
	}
	return nil
}
