package tlsca

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
	"time"
)

// serve runs a mutual-TLS server on loopback configured the way dockerd
// --tlsverify is: it trusts only the bundle's CA and demands a client cert.
func serve(t *testing.T, b *Bundle) string {
	t.Helper()
	pair, err := tls.X509KeyPair(b.Server.Cert, b.Server.Key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b.CACert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.(*tls.Conn).Handshake()
				_, _ = conn.Write([]byte("ok"))
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip reports whether a client with cfg gets a byte back from addr:
// with TLS 1.3 a rejected client certificate only shows on the first read.
func roundTrip(addr string, cfg *tls.Config) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2)
	_, err = conn.Read(buf)
	return err
}

func TestMutualTLS(t *testing.T) {
	job, err := New("job-a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := New("job-b", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, job)

	own, err := job.ClientTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.ClientTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	// A client that trusts the job's CA but presents another job's certificate.
	crossed, err := ClientTLSConfig(job.CACert, other.Client)
	if err != nil {
		t.Fatal(err)
	}
	noCert := own.Clone()
	noCert.Certificates = nil

	cases := []struct {
		name   string
		cfg    *tls.Config
		wantOK bool
	}{
		{"own certificate", own, true},
		{"another job's certificate", crossed, false},
		{"another job's CA and certificate", foreign, false},
		{"no client certificate", noCert, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := roundTrip(addr, tc.cfg)
			if tc.wantOK && err != nil {
				t.Fatalf("want success, got %v", err)
			}
			if !tc.wantOK && err == nil {
				t.Fatal("want the handshake refused, it succeeded")
			}
		})
	}
}

func TestCertificateShape(t *testing.T) {
	lifetime := 90 * time.Minute
	b, err := New("sb1", lifetime)
	if err != nil {
		t.Fatal(err)
	}
	parse := func(p []byte) *x509.Certificate {
		block, _ := pem.Decode(p)
		if block == nil {
			t.Fatal("no PEM block")
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca, server, client := parse(b.CACert), parse(b.Server.Cert), parse(b.Client.Cert)

	if !ca.IsCA {
		t.Error("CA certificate is not a CA")
	}
	for name, c := range map[string]*x509.Certificate{"ca": ca, "server": server, "client": client} {
		if c.PublicKeyAlgorithm != x509.ECDSA {
			t.Errorf("%s key algorithm = %v, want ECDSA", name, c.PublicKeyAlgorithm)
		}
		if got := time.Until(c.NotAfter); got > lifetime || got < lifetime-time.Minute {
			t.Errorf("%s expires in %v, want about %v", name, got, lifetime)
		}
	}
	if err := server.VerifyHostname("docker"); err != nil {
		t.Errorf("server cert: %v", err)
	}
	for _, h := range []string{"localhost", "127.0.0.1"} {
		if err := server.VerifyHostname(h); err != nil {
			t.Errorf("server cert for %s: %v", h, err)
		}
	}
	if len(b.Fingerprint()) != 64 {
		t.Errorf("fingerprint %q is not a hex SHA-256", b.Fingerprint())
	}
	if _, err := client.Verify(x509.VerifyOptions{Roots: poolOf(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client cert does not chain to the CA: %v", err)
	}
}

func poolOf(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		if _, err := New("bench", time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// The daemon's certificate covers every name a dind service gives it.
func TestServerCertificateCoversExtraNames(t *testing.T) {
	b, err := New("0123456789abcdef", time.Hour, "dockerd", "registry.example.com-mirror-docker")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b.Server.Cert)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"docker", "dockerd", "registry.example.com-mirror-docker"} {
		if err := cert.VerifyHostname(name); err != nil {
			t.Errorf("server certificate does not cover %s: %v", name, err)
		}
	}
	if err := cert.VerifyHostname("other"); err == nil {
		t.Error("server certificate covers a name it was not given")
	}
}
