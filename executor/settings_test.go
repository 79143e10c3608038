package executor

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
	"testing"
	"time"

	"gitlab.com/dind-executor/dind-executor/config"
)

// The [daemon] table reaches the executor's settings whole, the registry
// CAs as the config read them.
func TestSettingsFromConfigDaemonTable(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(fmt.Appendf(nil, `[daemon]
registry_mirrors = ["http://mirror:5000"]
insecure_registries = ["mirror:5000"]
http_proxy = "http://proxy:3128"
https_proxy = "http://proxy:3129"
no_proxy = "docker"
dns = ["10.0.0.2"]
extra_hosts = ["a:10.0.0.1"]
network_mtu = 1400
features = { containerd-snapshotter = true }
[daemon.registry_certs]
"reg:5000" = %q
`, caFile))
	if err != nil {
		t.Fatal(err)
	}
	s := SettingsFromConfig(cfg)
	d := s.Daemon
	got := []any{d.NetworkMTU, d.RegistryMirrors, d.InsecureRegistries, d.Proxy, d.DNS, s.ExtraHosts, d.Features, d.RegistryCAs}
	want := []any{1400, []string{"http://mirror:5000"}, []string{"mirror:5000"}, Proxy{"http://proxy:3128", "http://proxy:3129", "docker"},
		[]string{"10.0.0.2"}, []string{"a:10.0.0.1"}, map[string]bool{"containerd-snapshotter": true}, map[string][]byte{"reg:5000": caPEM}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("settings =\n%v\nwant\n%v", got, want)
	}
}
