package main

import (
	"archive/tar"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

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
	NetworkMade  time.Time
	VolumeMade   time.Time
	Created      time.Time
	Started      time.Time // ContainerStart returned
	CertsCopied  time.Time // client certs read back from the container
	Ready        time.Time // first mutual-TLS /_ping OK
	CertPolls    int
	PingAttempts int
}

// startBaseline creates and starts the daemon and waits until it answers
// over mutual TLS with its own client certificate.
func (b *bencher) startBaseline(ctx context.Context, i int) (*baselineDaemon, error) {
	d := &baselineDaemon{name: fmt.Sprintf("dind-bench-%d-baseline%d", b.runTag, i)}
	labels := map[string]string{benchLabel: strconv.FormatInt(b.runTag, 10), benchLabel + ".role": "baseline-daemon"}

	d.Begin = time.Now()
	if _, err := b.api.NetworkCreate(ctx, d.name, client.NetworkCreateOptions{
		Driver:  "bridge",
		Options: map[string]string{"com.docker.network.driver.mtu": strconv.Itoa(b.mtu)},
		Labels:  labels,
	}); err != nil {
		return d, fmt.Errorf("baseline network: %w", err)
	}
	d.NetworkMade = time.Now()
	if _, err := b.api.VolumeCreate(ctx, client.VolumeCreateOptions{Name: d.name, Labels: labels}); err != nil {
		return d, fmt.Errorf("baseline volume: %w", err)
	}
	d.VolumeMade = time.Now()

	// The sandbox daemon's "capabilities" profile (executor/containers.go
	// daemonContainer), since --privileged cannot apply on these hosts.
	host := &container.HostConfig{
		NetworkMode:   container.NetworkMode(d.name),
		Binds:         []string{d.name + ":/var/lib/docker", "/sys/fs/cgroup:/sys/fs/cgroup:rw"},
		CapAdd:        []string{"ALL"},
		CapDrop:       []string{"SYS_RESOURCE"},
		SecurityOpt:   []string{"seccomp=unconfined", "apparmor=unconfined"},
		MaskedPaths:   []string{},
		ReadonlyPaths: []string{},
	}
	host.Resources.DeviceCgroupRules = []string{"a *:* rwm"}
	created, err := b.api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: d.name,
		Config: &container.Config{
			Image:    seedjob.DaemonImage,
			Hostname: "docker",
			Env:      []string{"DOCKER_TLS_CERTDIR=" + baselineCertDir},
			Cmd:      []string{"--mtu=" + strconv.Itoa(b.mtu)},
			Labels:   labels,
		},
		HostConfig: host,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			d.name: {Aliases: []string{"docker"}},
		}},
	})
	if err != nil {
		return d, fmt.Errorf("baseline container: %w", err)
	}
	d.id = created.ID
	d.Created = time.Now()
	if _, err := b.api.ContainerStart(ctx, d.id, client.ContainerStartOptions{}); err != nil {
		return d, fmt.Errorf("start baseline daemon: %w", err)
	}
	d.Started = time.Now()

	ctx, cancel := context.WithTimeout(ctx, baselineReadyWait)
	defer cancel()
	addr, err := b.containerAddress(ctx, d.id, d.name)
	if err != nil {
		return d, err
	}
	tlsConfig, err := d.waitClientCerts(ctx, b.api)
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

// containerAddress is the container's IP on network, the way the executor
// reaches its own daemon from the host.
func (b *bencher) containerAddress(ctx context.Context, id, networkName string) (string, error) {
	res, err := b.api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
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
		d.CertPolls++
		files, err := copyFiles(ctx, api, d.id, baselineCertDir+"/client")
		if err == nil {
			var cfg *tls.Config
			if cfg, err = clientTLS(files); err == nil {
				return cfg, nil
			}
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("baseline daemon's client certificates never appeared (last: %v)", lastErr)
		case <-time.After(baselinePoll):
		}
	}
}

// copyFiles reads the regular files under dir in the container.
func copyFiles(ctx context.Context, api *client.Client, id, dir string) (map[string][]byte, error) {
	res, err := api.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: dir})
	if err != nil {
		return nil, err
	}
	defer res.Content.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(res.Content)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		files[path.Base(h.Name)] = data
	}
}

// clientTLS is what the docker CLI builds from DOCKER_CERT_PATH.
func clientTLS(files map[string][]byte) (*tls.Config, error) {
	for _, f := range []string{"ca.pem", "cert.pem", "key.pem"} {
		if len(files[f]) == 0 {
			return nil, fmt.Errorf("%s not written yet", f)
		}
	}
	pair, err := tls.X509KeyPair(files["cert.pem"], files["key.pem"])
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(files["ca.pem"]) {
		return nil, errors.New("ca.pem holds no certificate yet")
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, ServerName: "docker", MinVersion: tls.VersionTLS12}, nil
}

func (d *baselineDaemon) waitPing(ctx context.Context, tlsConfig *tls.Config, addr string) error {
	httpClient := &http.Client{
		Transport: &http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true},
		Timeout:   baselineAttempt,
	}
	var lastErr error
	for {
		d.PingAttempts++
		if lastErr = tlsPing(ctx, httpClient, "https://"+addr+"/_ping"); lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("baseline daemon at %s not ready over mutual TLS (%d attempts, last: %v)", addr, d.PingAttempts, lastErr)
		case <-time.After(baselinePoll):
		}
	}
}

func tlsPing(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/_ping answered %d", resp.StatusCode)
	}
	return nil
}

// removeBaseline force-removes the daemon, then its volume and network:
// what the docker executor does with a service at the end of a job.
func (b *bencher) removeBaseline(ctx context.Context, d *baselineDaemon) (time.Duration, error) {
	start := time.Now()
	var errs []error
	if _, err := b.api.ContainerRemove(ctx, d.name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
		errs = append(errs, err)
	}
	if _, err := b.api.VolumeRemove(ctx, d.name, client.VolumeRemoveOptions{Force: true}); err != nil {
		errs = append(errs, err)
	}
	if _, err := b.api.NetworkRemove(ctx, d.name, client.NetworkRemoveOptions{}); err != nil {
		errs = append(errs, err)
	}
	return time.Since(start), errors.Join(errs...)
}
