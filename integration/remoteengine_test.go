package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	mathrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// A remote Engine over TLS, as a runner reaches a build machine: a private
// dockerd in a network namespace of its own, listening on TCP with mutual
// TLS at the end of a veth. The test process (and the executor) reach that
// one address and nothing behind it: the Engine's bridges, where the
// sandbox's daemon lives, are not routable from here. The seed job runs
// end to end through [engine] host/tls_verify/tls_cert_path, and a runner
// with a certificate the Engine does not trust is told what to check.
func TestRemoteEngineOverTLS(t *testing.T) {
	t.Parallel()
	certs := t.TempDir()
	engineCA := newTestCA(t, "engine CA")
	addr := fmt.Sprintf("10.251.%d.%d", mathrand.IntN(250)+1, 4*mathrand.IntN(60)+2)
	engineCA.issue(t, filepath.Join(certs, "server"), "engine", net.ParseIP(addr))
	engineCA.issue(t, filepath.Join(certs, "client"), "runner", nil)
	newTestCA(t, "another CA").issue(t, filepath.Join(certs, "stranger"), "runner", nil)
	for _, dir := range []string{"client", "stranger"} {
		engineCA.writeCA(t, filepath.Join(certs, dir, "ca.pem"))
	}
	engineCA.writeCA(t, filepath.Join(certs, "server", "ca.pem"))

	private := startPrivateEngineWith(t, func(p *privateEngine) {
		linkToHost(t, p.netns, addr)
		server := filepath.Join(certs, "server")
		p.args = append(p.args, "-H", "tcp://"+addr+":2376", "--tlsverify",
			"--tlscacert", filepath.Join(server, "ca.pem"), "--tlscert", filepath.Join(server, "cert.pem"), "--tlskey", filepath.Join(server, "key.pem"))
	})
	private.loadImages(t, seedjob.DaemonImage, seedjob.JobImage, seedjob.HelperImage)

	engine := func(certDir string) string {
		return fmt.Sprintf("[engine]\nhost = \"tcp://%s:2376\"\ntls_verify = true\ntls_cert_path = %q\n", addr, certDir)
	}
	job := seedjob.Job(newJobID(), env.repoSHA)
	res := runJob(t, newEmulator(t, engine(filepath.Join(certs, "client"))+seedConfig()), job)
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success over the remote Engine", res.Outcome)
	}
	if left := objectsLabelled(t, private.api(t), "io.dind-executor.job.id", fmt.Sprint(job.ID)); len(left) > 0 {
		t.Errorf("left on the remote Engine: %v", left)
	}

	stranger := simpleJob("echo never")
	e := newEmulator(t, engine(filepath.Join(certs, "stranger"))+seedConfig())
	e.PrepareAttempts = 1
	res = runJob(t, e, stranger)
	log := runner.PlainText(res.Log)
	if res.Outcome.Kind == runner.OutcomeSuccess || !strings.Contains(log, "refused the TLS connection") || !strings.Contains(log, "check [engine] tls_cert_path") {
		t.Fatalf("a runner the Engine does not trust: outcome %s; log:\n%s", res.Outcome, log)
	}
}

// linkToHost joins a network namespace to the host by a veth with one /30:
// the host reaches addr and nothing else of the namespace.
func linkToHost(t *testing.T, netns, addr string) {
	t.Helper()
	ip := net.ParseIP(addr).To4()
	hostSide := net.IPv4(ip[0], ip[1], ip[2], ip[3]-1).String()
	name := fmt.Sprintf("dxv%06x", mathrand.IntN(1<<24))
	for _, args := range [][]string{
		{"link", "add", name, "type", "veth", "peer", "name", name + "n"},
		{"link", "set", name + "n", "netns", netns},
		{"addr", "add", hostSide + "/30", "dev", name},
		{"link", "set", name, "up"},
		{"-n", netns, "addr", "add", addr + "/30", "dev", name + "n"},
		{"-n", netns, "link", "set", name + "n", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", name).Run() })
}

// testCA issues certificates for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, der: der}
}

// issue writes cert.pem and key.pem in dir: a server certificate for ip,
// or a client certificate when ip is nil.
func (ca *testCA) issue(t *testing.T, dir, name string, ip net.IP) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if ip != nil {
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "cert.pem"), "CERTIFICATE", der)
	writePEM(t, filepath.Join(dir, "key.pem"), "PRIVATE KEY", keyDER)
}

func (ca *testCA) writeCA(t *testing.T, path string) {
	t.Helper()
	writePEM(t, path, "CERTIFICATE", ca.der)
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
