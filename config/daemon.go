package config

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Daemon is what every sandbox daemon is made with: what an operator of
// the docker executor sets with volumes and command lines on the dind
// service. All of it is part of the warm pool's identity: a pooled daemon
// made with other settings is never handed to a job.
type Daemon struct {
	// RegistryMirrors are Docker Hub pull-through mirrors, http(s) URLs
	// (dockerd --registry-mirror), tried in order before Docker Hub.
	RegistryMirrors []string `toml:"registry_mirrors"`
	// InsecureRegistries are "host[:port]" or CIDR ranges the daemon may
	// reach over plain HTTP or unverified TLS (dockerd --insecure-registry).
	InsecureRegistries []string `toml:"insecure_registries"`
	// RegistryCerts maps a registry ("host[:port]", as in image names) to
	// the PEM file, on the runner host, of the CA its certificate is signed
	// by. It lands in the daemon container at
	// /etc/docker/certs.d/<registry>/ca.crt.
	RegistryCerts map[string]string `toml:"registry_certs"`
	// RegistryCertsPEM is the content of each RegistryCerts file, read and
	// checked by Parse/Load; it is not a key. What was checked is what the
	// daemon gets.
	RegistryCertsPEM map[string][]byte `toml:"-"`
	// HTTPProxy, HTTPSProxy and NoProxy are the daemon container's proxy
	// variables (upper and lower case), for its pulls and pushes.
	HTTPProxy  string `toml:"http_proxy"`
	HTTPSProxy string `toml:"https_proxy"`
	NoProxy    string `toml:"no_proxy"`
	// DNS are the name servers of the containers the daemon starts
	// (dockerd --dns).
	DNS []string `toml:"dns"`
	// ExtraHosts are "host:ip" lines added to /etc/hosts of the daemon, the
	// build, the helper and the service containers.
	ExtraHosts []string `toml:"extra_hosts"`
	// NetworkMTU is the MTU of the daemon's bridge networks: its default
	// bridge and every network a job creates in it (docker network create,
	// compose). 0: the sandbox network's MTU.
	NetworkMTU int `toml:"network_mtu"`
	// Features are dockerd features by name (daemon.json "features").
	Features map[string]bool `toml:"features"`
}

// Limits of the daemon table.
const (
	// maxRegistryCertBytes bounds a registry CA file: a bundle of a few
	// hundred certificates fits; /dev/zero or a log file named by mistake
	// is refused instead of read.
	maxRegistryCertBytes = 1 << 20
	exampleMirror        = "https://mirror.example.com"
	exampleRegistry      = "registry.example.com:5000"
)

var (
	// dnsName is a host name as image references spell registries.
	dnsName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
	// hostsName is a name /etc/hosts can hold.
	hostsName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)
	// featureName is a dockerd feature name.
	featureName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// reservedHosts are names every job container resolves on the job network
// to the sandbox's own containers: an extra_hosts line for one of them
// would send the job's docker CLI, or its services, somewhere else.
var reservedHosts = []string{"docker", "build"}

func (d Daemon) validate(add addFunc) {
	seen := map[string]int{}
	for i, m := range d.RegistryMirrors {
		key := fmt.Sprintf("daemon.registry_mirrors[%d]", i)
		if msg := mirrorProblem(m); msg != "" {
			add("%s = %s %s", key, redactedURL(m), msg)
			continue
		}
		norm := strings.TrimSuffix(m, "/")
		if j, dup := seen[norm]; dup {
			add("%s = %q is listed twice (as daemon.registry_mirrors[%d]): list each mirror once", key, m, j)
		}
		seen[norm] = i
	}

	for i, r := range d.InsecureRegistries {
		if msg := InsecureRegistryProblem(r); msg != "" {
			add("daemon.insecure_registries[%d] = %q %s", i, r, msg)
		}
	}

	for _, reg := range sortedKeys(d.RegistryCerts) {
		key := fmt.Sprintf("daemon.registry_certs[%q]", reg)
		if msg := registryHostProblem(reg); msg != "" {
			add("%s: the registry %s; it names the directory /etc/docker/certs.d/<registry> the daemon looks in", key, msg)
		}
		if _, err := readRegistryCert(d.RegistryCerts[reg]); err != nil {
			add("%s = %q %v", key, d.RegistryCerts[reg], err)
		}
	}

	for _, p := range []struct{ key, value string }{{"daemon.http_proxy", d.HTTPProxy}, {"daemon.https_proxy", d.HTTPSProxy}} {
		if msg := proxyProblem(p.value); msg != "" {
			add("%s = %s %s", p.key, redactedURL(p.value), msg)
		}
	}
	if strings.ContainsFunc(d.NoProxy, isControl) {
		add("daemon.no_proxy = %q has a control character: write a comma-separated list such as \"localhost,127.0.0.0/8,.example.com\"", d.NoProxy)
	}

	for i, ip := range d.DNS {
		if net.ParseIP(ip) == nil {
			add("daemon.dns[%d] = %q is not an IP address: dockerd --dns takes name server addresses, e.g. \"10.0.0.2\"", i, ip)
		}
	}

	for i, h := range d.ExtraHosts {
		if msg := extraHostProblem(h); msg != "" {
			add("daemon.extra_hosts[%d] = %q %s", i, h, msg)
		}
	}

	if d.NetworkMTU != 0 && (d.NetworkMTU < minMTU || d.NetworkMTU > maxMTU) {
		add("daemon.network_mtu = %d is out of range: use 0 (the sandbox network's MTU) or %d..%d", d.NetworkMTU, minMTU, maxMTU)
	}

	for _, name := range sortedKeys(d.Features) {
		if !featureName.MatchString(name) {
			add("daemon.features has the name %q: a dockerd feature name is letters, digits, '.', '_' and '-', e.g. \"containerd-snapshotter\"", name)
		}
	}
}

// validateNetworkMTU checks daemon.network_mtu against sandbox.mtu: a job's
// networks with larger packets than the sandbox network carries lose every
// packet that does not fit.
func validateNetworkMTU(add addFunc, d Daemon, s Sandbox) {
	if d.NetworkMTU != 0 && s.MTU != 0 && d.NetworkMTU > s.MTU && s.MTU >= minMTU {
		add("daemon.network_mtu = %d is larger than sandbox.mtu = %d: the job's networks must fit in the sandbox network, use at most %d or 0",
			d.NetworkMTU, s.MTU, s.MTU)
	}
}

// The checks below are shared with the dockerd flags a job's dind service
// asks for (stages): a job's value is held to the operator's rules.

// MinMTU and MaxMTU bound every MTU: the config's and a job's --mtu.
const (
	MinMTU = minMTU
	MaxMTU = maxMTU
)

// InsecureRegistryProblem says what is wrong with an insecure registry
// ("host[:port]" or a CIDR range, as dockerd --insecure-registry takes
// it), or "".
func InsecureRegistryProblem(r string) string {
	switch {
	case strings.Contains(r, "://"):
		return fmt.Sprintf("has a scheme: write the registry as host[:port] or a CIDR range, e.g. %q or \"10.0.0.0/8\"", exampleRegistry)
	case strings.Contains(r, "/"):
		if _, _, err := net.ParseCIDR(r); err != nil {
			return "is not a CIDR range: write e.g. \"10.0.0.0/8\", or a registry as host[:port]"
		}
		return ""
	}
	return registryHostProblem(r)
}

// RegistryMirrorProblem says what is wrong with a registry mirror URL (as
// dockerd --registry-mirror takes it), or "".
func RegistryMirrorProblem(m string) string { return mirrorProblem(m) }

// ProxyProblem says what is wrong with a proxy URL, or "" (also for "").
func ProxyProblem(p string) string { return proxyProblem(p) }

// ValidFeatureName reports whether name can be a dockerd feature.
func ValidFeatureName(name string) bool { return featureName.MatchString(name) }

// ValidDNSName reports whether name is a DNS name (a search domain, a
// registry host).
func ValidDNSName(name string) bool { return dnsName.MatchString(name) }

// mirrorProblem says what is wrong with a registry mirror URL, or "".
func mirrorProblem(m string) string {
	const how = "write it as an http(s) URL such as \"" + exampleMirror + "\" or \"http://10.0.0.5:5000\""
	u, err := url.Parse(m)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
		return "is not an http(s) URL: " + how
	case u.User != nil:
		return "carries a user name or password, which dockerd refuses in a mirror: " + how + " and give the mirror's credentials to the jobs instead"
	case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(m, "?") || strings.HasSuffix(m, "#"):
		return "has a query or fragment: " + how
	case registryHostProblem(u.Host) != "":
		return "has the host " + strconv.Quote(u.Host) + ", which " + registryHostProblem(u.Host)
	}
	return ""
}

// proxyProblem says what is wrong with a proxy URL, or "".
func proxyProblem(p string) string {
	if p == "" {
		return ""
	}
	const how = "write it with its scheme, e.g. \"http://proxy.example.com:3128\", or leave it empty"
	u, err := url.Parse(p)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return "is not a proxy URL: " + how
	case u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5" && u.Scheme != "socks5h":
		return "has the scheme " + strconv.Quote(u.Scheme) + ": use http, https, socks5 or socks5h; " + how
	}
	return ""
}

// redactedURL quotes a URL for a message without its password: config
// problems reach the job log.
func redactedURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			return "(a value that does not parse as a URL, not shown as it may hold a password)"
		}
		return strconv.Quote(s)
	}
	return strconv.Quote(u.Redacted())
}

// registryHostProblem checks "host[:port]" as a registry is named in image
// references and in dockerd's certs.d directories; "" when it is one.
func registryHostProblem(r string) string {
	const how = "write it as host[:port], e.g. \"" + exampleRegistry + "\""
	if r == "" {
		return "is empty: " + how
	}
	if strings.ContainsAny(r, "/\\ ") {
		return "is not host[:port] (no scheme, path or spaces): " + how
	}
	host, port := r, ""
	if h, p, err := net.SplitHostPort(r); err == nil {
		host, port = h, p
	} else if strings.Count(r, ":") == 1 || strings.HasPrefix(r, "[") {
		return "is not host[:port]: " + how
	}
	if port != "" || strings.HasSuffix(r, ":") {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return "has the port " + strconv.Quote(port) + ": use 1..65535; " + how
		}
	}
	if net.ParseIP(host) == nil && !dnsName.MatchString(host) {
		return "is not host[:port] (a host name, or an IP address with IPv6 in brackets): " + how
	}
	return ""
}

// extraHostProblem checks one "host:ip" line, as the runner's extra_hosts
// writes it; "" when it is one.
func extraHostProblem(h string) string {
	const how = "write it as \"host:ip\", e.g. \"registry.internal:10.0.0.5\" or \"gitlab.internal:host-gateway\""
	name, ip, ok := strings.Cut(h, ":")
	switch {
	case !ok:
		if strings.Contains(h, "=") {
			return "is not host:ip (the \"=\" form is not accepted by every Engine): " + how
		}
		return "is not host:ip: " + how
	case !hostsName.MatchString(name):
		return "has the host name " + strconv.Quote(name) + ": use letters, digits, '.', '-' and '_'; " + how
	case slices.Contains(reservedHosts, name):
		return "would take the name " + strconv.Quote(name) + ", which the job's containers resolve to the sandbox's own " +
			map[string]string{"docker": "daemon", "build": "build container"}[name] + ": pick another name"
	case strings.HasPrefix(ip, "[") && strings.HasSuffix(ip, "]"):
		return "has a bracketed IPv6 address: write it without brackets, e.g. \"" + name + ":" + strings.Trim(ip, "[]") + "\""
	case ip == "host-gateway":
		return ""
	case net.ParseIP(ip) == nil:
		return "has " + strconv.Quote(ip) + ", which is not an IP address (or host-gateway): " + how
	}
	return ""
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// readRegistryCert reads a registry CA file and checks it: an absolute
// path to a regular file of at most 1 MiB holding one or more PEM
// certificates and nothing else (a private key in it would be copied into
// every daemon, where jobs can read it).
func readRegistryCert(file string) ([]byte, error) {
	if !path.IsAbs(file) {
		return nil, errors.New("is not an absolute path: name the CA certificate's PEM file on the runner host, e.g. \"/etc/dind-executor/certs/registry-ca.pem\"")
	}
	// Stat first: opening a FIFO named by mistake would block the hook.
	info, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("cannot be read (%v): put the registry's CA certificate there, or fix the path", errors.Unwrap(err))
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("is not a regular file (%s): name the CA certificate's PEM file", info.Mode().Type())
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("cannot be read (%v): make it readable by the user the runner runs as", errors.Unwrap(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRegistryCertBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot be read (%v)", err)
	}
	if len(data) > maxRegistryCertBytes {
		return nil, fmt.Errorf("is larger than %d KiB: name the registry's CA certificate, not a bigger file", maxRegistryCertBytes>>10)
	}
	if err := checkCertPEM(data); err != nil {
		return nil, err
	}
	return data, nil
}

// checkCertPEM accepts PEM data made of certificates only.
func checkCertPEM(data []byte) error {
	certs := 0
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			if strings.Contains(block.Type, "PRIVATE KEY") {
				return fmt.Errorf("holds a %s: give the CA certificate alone, the key would reach every job's daemon", block.Type)
			}
			return fmt.Errorf("holds a PEM block of type %q: give the CA certificate alone (BEGIN CERTIFICATE)", block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("holds a certificate that does not parse (%v): give the registry's CA certificate in PEM", err)
		}
		certs++
	}
	if certs == 0 {
		return errors.New("is not PEM (no \"-----BEGIN CERTIFICATE-----\" block): give the registry's CA certificate in PEM, e.g. converted with openssl x509 -inform der")
	}
	if bytes.Contains(rest, []byte("-----BEGIN")) {
		return errors.New("has a PEM block after its last certificate that does not decode: check the file's BEGIN/END lines and base64 text")
	}
	return nil
}
