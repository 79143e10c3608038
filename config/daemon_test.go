package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testCAPEM is a self-signed CA certificate in PEM, and its key in PEM.
func testCAPEM(t *testing.T) (cert, key []byte) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test registry CA"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestValidateDaemon covers every rule of the [daemon] table: each case
// changes a valid Default() and names the problems it must produce.
func TestValidateDaemon(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := testCAPEM(t)
	ca := writeFile(t, dir, "ca.pem", certPEM)
	bundle := writeFile(t, dir, "bundle.pem", append(append([]byte("subject=CN = test\n"), certPEM...), certPEM...))
	withKey := writeFile(t, dir, "with-key.pem", append(append([]byte{}, certPEM...), keyPEM...))
	der := writeFile(t, dir, "ca.der", func() []byte { b, _ := pem.Decode(certPEM); return b.Bytes }())
	notCert := writeFile(t, dir, "csr.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1}}))
	garbled := writeFile(t, dir, "garbled.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")}))
	truncated := writeFile(t, dir, "truncated.pem", append(append([]byte{}, certPEM...), certPEM[:len(certPEM)/2]...))
	huge := writeFile(t, dir, "huge.pem", []byte(strings.Repeat(string(certPEM), maxRegistryCertBytes/len(certPEM)+1)))
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	certs := func(m map[string]string) func(*Config) {
		return func(c *Config) { c.Daemon.RegistryCerts = m }
	}

	cases := []struct {
		name   string
		modify func(*Config)
		want   [][]string // per problem, in order: substrings it must contain
	}{
		{"empty table", func(*Config) {}, nil},

		{"mirrors https, http with port and path", func(c *Config) {
			c.Daemon.RegistryMirrors = []string{"https://mirror.example.com", "http://127.0.0.1:5000/", "https://m.example.com/hub"}
		}, nil},
		{"mirror without scheme", func(c *Config) { c.Daemon.RegistryMirrors = []string{"mirror.example.com:5000"} },
			[][]string{{"daemon.registry_mirrors[0]", "not an http(s) URL", "https://mirror.example.com"}}},
		{"mirror empty", func(c *Config) { c.Daemon.RegistryMirrors = []string{""} },
			[][]string{{"daemon.registry_mirrors[0]", `""`, "not an http(s) URL"}}},
		{"mirror without host", func(c *Config) { c.Daemon.RegistryMirrors = []string{"https://"} },
			[][]string{{"daemon.registry_mirrors[0]", "not an http(s) URL"}}},
		{"mirror with credentials is not shown", func(c *Config) { c.Daemon.RegistryMirrors = []string{"https://u:hunter2@m.example.com"} },
			[][]string{{"daemon.registry_mirrors[0]", "user name or password", "xxxxx"}}},
		{"mirror with a fragment", func(c *Config) { c.Daemon.RegistryMirrors = []string{"https://m.example.com#x"} },
			[][]string{{"query or fragment"}}},
		{"mirror with a bad port", func(c *Config) { c.Daemon.RegistryMirrors = []string{"https://m.example.com:0"} },
			[][]string{{"daemon.registry_mirrors[0]", `port "0"`}}},
		{"mirror twice", func(c *Config) {
			c.Daemon.RegistryMirrors = []string{"https://m.example.com", "https://m.example.com/"}
		}, [][]string{{"daemon.registry_mirrors[1]", "listed twice", "daemon.registry_mirrors[0]"}}},

		{"insecure host, host:port, IP, IPv6, CIDR", func(c *Config) {
			c.Daemon.InsecureRegistries = []string{"reg", "reg.example.com:5000", "10.0.0.5:5000", "[fd00::1]:5000", "fd00::1", "10.0.0.0/8", "fd00::/8"}
		}, nil},
		{"insecure with scheme", func(c *Config) { c.Daemon.InsecureRegistries = []string{"https://reg:5000"} },
			[][]string{{"daemon.insecure_registries[0]", "has a scheme"}}},
		{"insecure empty, port empty, bad name", func(c *Config) { c.Daemon.InsecureRegistries = []string{"", "reg:", "-reg-"} },
			[][]string{{"daemon.insecure_registries[0]", "is empty"}, {"daemon.insecure_registries[1]", `port ""`}, {"daemon.insecure_registries[2]", "not host[:port]"}}},

		{"certs: a CA, a bundle with text before it", certs(map[string]string{"reg.example.com:5000": ca, "10.0.0.5": bundle}), nil},
		{"certs: private key refused", certs(map[string]string{"reg": withKey}),
			[][]string{{`daemon.registry_certs["reg"]`, withKey, "EC PRIVATE KEY", "CA certificate alone"}}},
		{"certs: DER is not PEM", certs(map[string]string{"reg": der}),
			[][]string{{"is not PEM", "BEGIN CERTIFICATE", "openssl x509 -inform der"}}},
		{"certs: another PEM block", certs(map[string]string{"reg": notCert}),
			[][]string{{`type "CERTIFICATE REQUEST"`}}},
		{"certs: certificate does not parse", certs(map[string]string{"reg": garbled}),
			[][]string{{"does not parse"}}},
		{"certs: truncated second certificate", certs(map[string]string{"reg": truncated}),
			[][]string{{"does not decode"}}},
		{"certs: too big", certs(map[string]string{"reg": huge}),
			[][]string{{"larger than 1024 KiB"}}},
		{"certs: missing file", certs(map[string]string{"reg": filepath.Join(dir, "nope.pem")}),
			[][]string{{"cannot be read", "no such file or directory", "fix the path"}}},
		{"certs: a directory", certs(map[string]string{"reg": dir}),
			[][]string{{"not a regular file"}}},
		{"certs: a FIFO is not opened", certs(map[string]string{"reg": fifo}),
			[][]string{{"not a regular file"}}},
		{"certs: relative path", certs(map[string]string{"reg": "ca.pem"}),
			[][]string{{"not an absolute path"}}},
		{"certs: bad registry names, sorted", certs(map[string]string{"https://reg": ca, "reg/path": ca, "reg:x": ca}),
			[][]string{{`["https://reg"]`, "not host[:port]"}, {`["reg/path"]`, "not host[:port]"}, {`["reg:x"]`, `port "x"`}}},

		{"proxies", func(c *Config) {
			c.Daemon.HTTPProxy, c.Daemon.HTTPSProxy, c.Daemon.NoProxy = "http://proxy:3128", "socks5://u:p@proxy:1080", "localhost, .internal"
		}, nil},
		{"proxy without scheme", func(c *Config) { c.Daemon.HTTPProxy = "proxy:3128" },
			[][]string{{"daemon.http_proxy", "not a proxy URL", "http://proxy.example.com:3128"}}},
		{"proxy password never shown", func(c *Config) { c.Daemon.HTTPSProxy = "ftp://u:hunter2@proxy" },
			[][]string{{"daemon.https_proxy", `scheme "ftp"`, "xxxxx"}}},
		{"no_proxy with a newline", func(c *Config) { c.Daemon.NoProxy = "a\nb" },
			[][]string{{"daemon.no_proxy", "control character"}}},

		{"dns v4 and v6", func(c *Config) { c.Daemon.DNS = []string{"10.0.0.2", "::1"} }, nil},
		{"dns name", func(c *Config) { c.Daemon.DNS = []string{"10.0.0.2", "ns.example.com"} },
			[][]string{{"daemon.dns[1]", `"ns.example.com"`, "not an IP address"}}},

		{"extra hosts", func(c *Config) {
			c.Daemon.ExtraHosts = []string{"a:10.0.0.1", "b.example_x:::1", "gw:host-gateway", "dockerhub:127.0.0.1"}
		}, nil},
		{"extra host build", func(c *Config) { c.Daemon.ExtraHosts = []string{"build:10.0.0.1"} },
			[][]string{{"daemon.extra_hosts[0]", "sandbox's own build container"}}},
		{"extra host bad name", func(c *Config) { c.Daemon.ExtraHosts = []string{"a b:10.0.0.1", ":10.0.0.1"} },
			[][]string{{"daemon.extra_hosts[0]", `host name "a b"`}, {"daemon.extra_hosts[1]", `host name ""`}}},

		{"network mtu bounds", func(c *Config) { c.Daemon.NetworkMTU = 576 }, nil},
		{"network mtu below", func(c *Config) { c.Daemon.NetworkMTU = 100 },
			[][]string{{"daemon.network_mtu = 100", "0 (the sandbox network's MTU)", "576..65535"}}},
		{"network mtu equal to sandbox mtu", func(c *Config) { c.Sandbox.MTU, c.Daemon.NetworkMTU = 1450, 1450 }, nil},
		{"network mtu over sandbox mtu", func(c *Config) { c.Sandbox.MTU, c.Daemon.NetworkMTU = 1400, 1450 },
			[][]string{{"daemon.network_mtu = 1450", "sandbox.mtu = 1400"}}},

		{"features", func(c *Config) {
			c.Daemon.Features = map[string]bool{"containerd-snapshotter": true, "buildkit": false}
		}, nil},
		{"feature that would inject a flag", func(c *Config) { c.Daemon.Features = map[string]bool{"x=true --debug": true} },
			[][]string{{"daemon.features", `"x=true --debug"`}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.modify(&c)
			err := c.Validate()
			wantProblems(t, err, tc.want)
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("a problem shows a password: %v", err)
			}
		})
	}
}

// Parse keeps each registry CA as it read and checked it: the daemons get
// those bytes, not whatever the file holds later.
func TestParseReadsRegistryCerts(t *testing.T) {
	dir := t.TempDir()
	certPEM, _ := testCAPEM(t)
	ca := writeFile(t, dir, "ca.pem", certPEM)
	for name, toml := range map[string]string{
		"sub-table":    fmt.Sprintf("[daemon.registry_certs]\n%q = %q\n", "reg.example.com:5000", ca),
		"inline table": fmt.Sprintf("[daemon]\nregistry_certs = { %q = %q }\n", "reg.example.com:5000", ca),
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Parse([]byte(toml))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Daemon.RegistryCertsPEM["reg.example.com:5000"]; string(got) != string(certPEM) {
				t.Errorf("RegistryCertsPEM = %q, want the file's content", got)
			}
		})
	}
	if c, err := Parse(nil); err != nil || c.Daemon.RegistryCertsPEM != nil {
		t.Errorf("without registry_certs: %v, %v", c.Daemon.RegistryCertsPEM, err)
	}
}

func TestParseDaemonTable(t *testing.T) {
	got, err := Load("testdata/valid-daemon.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := Daemon{
		RegistryMirrors:    []string{"https://mirror.example.com", "http://10.0.0.5:5000/hub"},
		InsecureRegistries: []string{"registry.internal:5000", "10.0.0.0/8", "[fd00::1]:5000"},
		HTTPProxy:          "http://proxy.example.com:3128",
		HTTPSProxy:         "http://user:secret@proxy.example.com:3128",
		NoProxy:            "localhost,127.0.0.0/8,docker,.internal",
		DNS:                []string{"10.0.0.2", "fd00::53"},
		ExtraHosts:         []string{"gitlab.internal:10.0.0.7", "v6.internal:fd00::7", "host.internal:host-gateway"},
		NetworkMTU:         1400,
		Features:           map[string]bool{"containerd-snapshotter": true, "buildkit": false},
	}
	if !reflect.DeepEqual(got.Daemon, want) {
		t.Errorf("Load(valid-daemon).Daemon =\n%+v\nwant\n%+v", got.Daemon, want)
	}
}

// Names inside registry_certs and features are the operator's; a map key
// given a non-table value is still a problem.
func TestDaemonMapKeys(t *testing.T) {
	_, err := Parse([]byte("[daemon]\nfeatures = { anything-goes = true }\n[daemon.registry_certs]\n"))
	if err != nil {
		t.Errorf("names inside the maps were taken for unknown keys: %v", err)
	}
	_, err = Parse([]byte("[daemon]\nregistry_certs = 5\nfeatures = [true]\nfeaturez = 1\n"))
	got := problems(err)
	want := [][]string{
		{`unknown key "daemon.featurez"`},
		{"daemon.registry_certs", "integer, not a table"},
		{"daemon.features", "array, not a table"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d: %v", len(got), len(want), err)
	}
	for i, subs := range want {
		for _, s := range subs {
			if !strings.Contains(got[i].Error(), s) {
				t.Errorf("problem %d = %q, want it to contain %q", i, got[i], s)
			}
		}
	}
}

// The shipped config, with its [daemon] table, loads and is the defaults.
func TestDeployConfigLoads(t *testing.T) {
	c, err := Load("../deploy/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	d := c.Daemon
	if len(d.RegistryMirrors)+len(d.InsecureRegistries)+len(d.RegistryCerts)+len(d.DNS)+len(d.ExtraHosts)+len(d.Features) != 0 ||
		d.HTTPProxy+d.HTTPSProxy+d.NoProxy != "" || d.NetworkMTU != 0 {
		t.Errorf("deploy/config.toml sets daemon settings: %+v", d)
	}
}
