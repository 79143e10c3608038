package executor

import (
	"context"
	"fmt"
	"net/http"

	"github.com/moby/moby/client"
	"github.com/sirupsen/logrus"
)

// docker does the sandbox's work on the outer Engine: every Engine call
// of the executor is a method of it. Engine (lifecycle.go) is the API in
// front of it, which adds the audit trail.
type docker struct {
	api *client.Client
	log logrus.FieldLogger
	// endpoint names this Engine in what the executor reports (ps, the
	// trail, the job log): the host as the operator wrote it.
	endpoint string
}

// dial opens a client to the Engine at host, or, when host is empty, the
// one DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH or the local socket
// name; with tlsFiles, over TLS with those files. The API version is
// negotiated down to what the Engine speaks.
func dial(host string, tlsFiles *EngineTLS, log logrus.FieldLogger) (*docker, error) {
	opts := []client.Opt{client.FromEnv}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	if tlsFiles != nil {
		cfg, err := tlsFiles.config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}), client.WithScheme("https"))
	}
	api, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker engine client for %q: %w", host, err)
	}
	endpoint := host
	if endpoint == "" {
		endpoint = api.DaemonHost()
	}
	return &docker{api: api, log: log, endpoint: endpoint}, nil
}

// Close releases the client's idle connections.
func (e *docker) Close() error { return e.api.Close() }

// ping checks the Engine answers, so that a dead Engine is reported as such
// rather than as the first failing step.
func (e *docker) ping(ctx context.Context) error {
	if _, err := e.api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		if isTLSError(err) {
			return fmt.Errorf("docker engine at %s refused the TLS connection: %w (check [engine] tls_cert_path and tls_verify: "+
				"ca.pem must be the CA of the Engine's certificate, whose names must include the host of [engine] host, and the Engine must trust the CA of cert.pem)", e.api.DaemonHost(), err)
		}
		return fmt.Errorf("docker engine at %s does not answer: %w (is dockerd running, and is [engine] host right?)", e.api.DaemonHost(), err)
	}
	return nil
}
