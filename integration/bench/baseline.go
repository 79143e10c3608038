package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor/containerfs"
	"gitlab.com/dind-executor/dind-executor/executor/innerdaemon"
	"gitlab.com/dind-executor/dind-executor/executor/tlsca"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// The baseline is the docker executor's docker:dind service with TLS, as
// far as it can be reproduced without gitlab-runner: the same daemon image
// started with DOCKER_TLS_CERTDIR=/certs and no certificates, so its own
// entrypoint generates the RSA-4096 CA, server and client keys, on a
// private bridge with the "docker" alias, a data-root volume and the same
// security profile as the sandbox's daemon. It is ready when /_ping answers
// over mutual TLS with the client certificate it generated, copied out of
// the container once it exists.

const (
	baselineCertDir   = "/certs"
	baselinePoll      = 50 * time.Millisecond // like the executor's readiness poll
	baselineAttempt   = 2 * time.Second
	baselineReadyWait = 120 * time.Second
)

// baselineDaemon is one docker:dind-style daemon made by the bench.
type baselineDaemon struct {
	name string // network, volume and container share it
	id   string // container id

	// Timeline, from the first API call.
	Begin        time.Time
	VolumeMade   time.Time
	Created      time.Time
	Started      time.Time // ContainerStart returned
	CertsCopied  time.Time // client certs read back from the container
	Ready        time.Time // first mutual-TLS /_ping OK
	PingAttempts int
}

// startBaseline creates and starts the daemon and waits until it answers
// over mutual TLS with its own client certificate.
func startBaseline(ctx context.Context, api *client.Client, inv *invocation, i, mtu int) (*baselineDaemon, error) {
	d := &baselineDaemon{name: fmt.Sprintf("dind-bench-%d-baseline%d", inv.tag, i)}
	labels := inv.labels("baseline-daemon")

	d.Begin = time.Now()
	if _, err := api.NetworkCreate(ctx, d.name, client.NetworkCreateOptions{
		Driver:  "bridge",
		Options: map[string]string{"com.docker.network.driver.mtu": strconv.Itoa(mtu)},
		Labels:  labels,
	}); err != nil {
		return d, fmt.Errorf("baseline network: %w", err)
	}
	if _, err := api.VolumeCreate(ctx, client.VolumeCreateOptions{Name: d.name, Labels: labels}); err != nil {
		return d, fmt.Errorf("baseline volume: %w", err)
	}
	d.VolumeMade = time.Now()

	created, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: d.name,
		Config: &container.Config{
			Image:    seedjob.DaemonImage,
			Hostname: "docker",
			Env:      []string{"DOCKER_TLS_CERTDIR=" + baselineCertDir},
			Cmd:      []string{"--mtu=" + strconv.Itoa(mtu)},
			Labels:   labels,
		},
		HostConfig: capabilitiesProfile(d.name),
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			d.name: {Aliases: []string{"docker"}},
		}},
	})
	if err != nil {
		return d, fmt.Errorf("baseline container: %w", err)
	}
	d.id = created.ID
	d.Created = time.Now()
	if _, err := api.ContainerStart(ctx, d.id, client.ContainerStartOptions{}); err != nil {
		return d, fmt.Errorf("start baseline daemon: %w", err)
	}
	d.Started = time.Now()

	ctx, cancel := context.WithTimeout(ctx, baselineReadyWait)
	defer cancel()
	addr, err := containerAddress(ctx, api, d.id, d.name)
	if err != nil {
		return d, err
	}
	tlsConfig, err := d.waitClientCerts(ctx, api)
	if err != nil {
		return d, err
	}
	d.CertsCopied = time.Now()
	if err := d.waitPing(ctx, tlsConfig, addr); err != nil {
		return d, err
	}
	d.Ready = time.Now()
	return d, nil
}

// capabilitiesProfile is the sandbox daemon's "capabilities" security
// profile (see the README's Security section), since --privileged cannot
// apply on these hosts, with the data-root volume named like the daemon.
func capabilitiesProfile(name string) *container.HostConfig {
	host := &container.HostConfig{
		NetworkMode:   container.NetworkMode(name),
		Binds:         []string{name + ":/var/lib/docker", "/sys/fs/cgroup:/sys/fs/cgroup:rw"},
		CapAdd:        []string{"ALL"},
		CapDrop:       []string{"SYS_RESOURCE"},
		SecurityOpt:   []string{"seccomp=unconfined", "apparmor=unconfined"},
		MaskedPaths:   []string{},
		ReadonlyPaths: []string{},
	}
	host.Resources.DeviceCgroupRules = []string{"a *:* rwm"}
	return host
}

// containerAddress is the container's IP on network, the way the executor
// reaches its own daemon from the host.
func containerAddress(ctx context.Context, api *client.Client, id, networkName string) (string, error) {
	res, err := api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspect baseline daemon: %w", err)
	}
	ep := res.Container.NetworkSettings.Networks[networkName]
	if ep == nil || !ep.IPAddress.IsValid() {
		return "", fmt.Errorf("baseline daemon has no address on %s", networkName)
	}
	return net.JoinHostPort(ep.IPAddress.String(), "2376"), nil
}

// waitClientCerts polls the container until the entrypoint has written the
// client key, certificate and CA, and returns a client TLS config from them.
func (d *baselineDaemon) waitClientCerts(ctx context.Context, api *client.Client) (*tls.Config, error) {
	var lastErr error
	for {
		files, err := containerfs.ReadFiles(ctx, api, d.id, baselineCertDir+"/client")
		if err == nil {
			var cfg *tls.Config
			if cfg, err = certDirTLS(files); err == nil {
				return cfg, nil
			}
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("baseline daemon's client certificates never appeared (last: %w)", lastErr)
		case <-time.After(baselinePoll):
		}
	}
}

// certDirTLS is what the docker CLI builds from DOCKER_CERT_PATH; it
// refuses a directory the entrypoint is still writing.
func certDirTLS(files map[string][]byte) (*tls.Config, error) {
	for _, f := range []string{"ca.pem", "cert.pem", "key.pem"} {
		if len(files[f]) == 0 {
			return nil, fmt.Errorf("%s not written yet", f)
		}
	}
	return tlsca.ClientTLSConfig(files["ca.pem"], tlsca.PEMPair{Cert: files["cert.pem"], Key: files["key.pem"]})
}

func (d *baselineDaemon) waitPing(ctx context.Context, tlsConfig *tls.Config, addr string) error {
	httpClient := innerdaemon.HTTPClient(tlsConfig, baselineAttempt, nil)
	var lastErr error
	for {
		d.PingAttempts++
		if _, lastErr = innerdaemon.Ping(ctx, httpClient, addr); lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("baseline daemon at %s not ready over mutual TLS (%d attempts, last: %w)", addr, d.PingAttempts, lastErr)
		case <-time.After(baselinePoll):
		}
	}
}

// removeBaseline force-removes the daemon, then its volume and network:
// what the docker executor does with a service at the end of a job.
func removeBaseline(ctx context.Context, api *client.Client, d *baselineDaemon) (time.Duration, error) {
	start := time.Now()
	var errs []error
	if _, err := api.ContainerRemove(ctx, d.name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
		errs = append(errs, fmt.Errorf("remove baseline container: %w", err))
	}
	if _, err := api.VolumeRemove(ctx, d.name, client.VolumeRemoveOptions{Force: true}); err != nil {
		errs = append(errs, fmt.Errorf("remove baseline volume: %w", err))
	}
	if _, err := api.NetworkRemove(ctx, d.name, client.NetworkRemoveOptions{}); err != nil {
		errs = append(errs, fmt.Errorf("remove baseline network: %w", err))
	}
	return time.Since(start), errors.Join(errs...)
}

// outerMTU is the default bridge's MTU, as the executor reads it.
func outerMTU(ctx context.Context, api *client.Client) int {
	res, err := api.NetworkInspect(ctx, "bridge", client.NetworkInspectOptions{})
	if err == nil {
		if mtu, err := strconv.Atoi(res.Network.Options["com.docker.network.driver.mtu"]); err == nil && mtu > 0 {
			return mtu
		}
	}
	return 1500
}
