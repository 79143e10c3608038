// Package innerdaemon talks to a sandbox's own Docker daemon over mutual
// TLS, with certificates held in memory: the readiness ping and an Engine
// API client for reading back what the job made.
package innerdaemon

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/moby/moby/client"
)

// HTTPClient is a client for one daemon, without keep-alives: each ping is
// a fresh TLS handshake, so a daemon that restarted is noticed. timeout
// bounds one request (0: none).
func HTTPClient(tlsConfig *tls.Config, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true},
		Timeout:   timeout,
	}
}

// Ping asks the daemon at addr (host:port) for /_ping once. A TCP connect
// is not enough: dockerd opens its port before it serves.
func Ping(ctx context.Context, c *http.Client, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/_ping answered %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	return nil
}

// Client is an Engine API client for the daemon at addr.
func Client(addr string, tlsConfig *tls.Config) (*client.Client, error) {
	c, err := client.New(client.WithHost("tcp://"+addr), client.WithHTTPClient(HTTPClient(tlsConfig, 0)))
	if err != nil {
		return nil, fmt.Errorf("client for the job's daemon at %s: %w", addr, err)
	}
	return c, nil
}
