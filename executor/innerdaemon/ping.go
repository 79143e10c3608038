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
	"net"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/moby/moby/client"
)

// DialFunc opens a connection to the daemon; addr is the one of the
// request, which a dialer that knows its way (a tunnel through the Engine)
// ignores. nil dials addr directly.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// HTTPClient is a client for one daemon, without keep-alives: each ping is
// a fresh TLS handshake, so a daemon that restarted is noticed. timeout
// bounds one request (0: none).
func HTTPClient(tlsConfig *tls.Config, timeout time.Duration, dial DialFunc) *http.Client {
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true, DialContext: dial},
		Timeout:   timeout,
	}
}

// Ping asks the daemon at addr (host:port) for /_ping once, and returns
// what it says of itself in the answer's headers (Server: Docker/<version>,
// API-Version), so knowing the version costs no other request. A TCP
// connect is not enough: dockerd opens its port before it serves.
func Ping(ctx context.Context, c *http.Client, addr string) (VersionInfo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/_ping", nil)
	if err != nil {
		return VersionInfo{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return VersionInfo{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	if resp.StatusCode != http.StatusOK {
		return VersionInfo{}, fmt.Errorf("/_ping answered %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	return versionFromHeaders(resp.Header), nil
}

// VersionInfo is what a daemon says of itself; the job controls the
// daemon, so both are cut to a short printable string.
type VersionInfo struct {
	Version    string
	APIVersion string
}

func versionFromHeaders(h http.Header) VersionInfo {
	product, _, _ := strings.Cut(h.Get("Server"), " ")
	version, _ := strings.CutPrefix(product, "Docker/")
	return VersionInfo{Version: Printable(version, 64), APIVersion: Printable(h.Get("API-Version"), 64)}
}

// Printable keeps at most max characters of s, what a sandbox's daemon
// said, each safe in a log line: control and bidi characters become '?'.
func Printable(s string, max int) string {
	out := []rune{}
	for _, r := range s {
		if len(out) == max {
			break
		}
		if r < 0x20 || r == 0x7f || !utf8.ValidRune(r) || unicode.Is(unicode.Bidi_Control, r) {
			r = '?'
		}
		out = append(out, r)
	}
	return string(out)
}

// handshakeLimit and answerLimit bound a request's TLS handshake and the
// wait for its answer's headers. Pruning a large build cache is the
// slowest request the executor makes.
const (
	handshakeLimit = 15 * time.Second
	answerLimit    = 60 * time.Second
)

// MaxResponse bounds one answer of a sandbox's daemon: the job controls
// that daemon, and an image list of a real job is kilobytes.
const MaxResponse = 16 << 20

// Client is an Engine API client for the daemon at addr, reached through
// dial. Requests reuse one connection (a tunnel costs more to open than a
// request), and every response body is cut off, with an error, past
// MaxResponse.
func Client(addr string, tlsConfig *tls.Config, dial DialFunc) (*client.Client, error) {
	hc := &http.Client{Transport: limitedTransport{
		next: &http.Transport{TLSClientConfig: tlsConfig, DialContext: dial, MaxIdleConnsPerHost: 1,
			// A daemon that accepts and then says nothing (stopped by the
			// job) fails the request, whatever deadline the caller has.
			TLSHandshakeTimeout: handshakeLimit, ResponseHeaderTimeout: answerLimit},
		max: MaxResponse,
	}}
	// The wrapped transport hides the TLS config the client would guess
	// the scheme from.
	c, err := client.New(client.WithHost("tcp://"+addr), client.WithHTTPClient(hc), client.WithScheme("https"))
	if err != nil {
		return nil, fmt.Errorf("client for the job's daemon at %s: %w", addr, err)
	}
	return c, nil
}

// limitedTransport bounds every response body it returns.
type limitedTransport struct {
	next http.RoundTripper
	max  int64
}

func (t limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	max := t.max
	if isInspect(req) {
		max = min(max, MaxInspect)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: max, max: max}
	if resp.StatusCode/100 != 2 {
		return resp, nil
	}
	// Every answer is JSON that the client decodes whole: its arrays are
	// what decodes into far more memory than its bytes.
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		body, err = boundArrays(body, MaxListItems, isList(req))
	}
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	resp.Body, resp.ContentLength = bufferedBody{Reader: bytes.NewReader(body), orig: resp.Body}, int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
	max  int64 // for the error
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// At the bound: only the end of the answer may follow.
		var one [1]byte
		if n, err := b.rc.Read(one[:]); n == 0 && err == io.EOF {
			return 0, io.EOF
		}
		return 0, fmt.Errorf("the daemon's answer is larger than %d bytes", b.max)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
