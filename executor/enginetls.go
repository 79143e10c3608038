package executor

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EngineTLS is how the executor proves itself to a remote Engine over
// tcp://, as the docker executor's tls_cert_path and tls_verify: a
// directory with ca.pem, cert.pem and key.pem.
type EngineTLS struct {
	CertPath string
	// Verify checks the Engine's certificate against ca.pem; without it
	// the client certificate is still presented.
	Verify bool
}

func (t EngineTLS) config() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(t.CertPath, "cert.pem"), filepath.Join(t.CertPath, "key.pem"))
	if err != nil {
		return nil, fmt.Errorf("engine TLS: load cert.pem and key.pem from %s: %w", t.CertPath, err)
	}
	caPEM, err := os.ReadFile(filepath.Join(t.CertPath, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("engine TLS: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("engine TLS: %s holds no PEM certificate", filepath.Join(t.CertPath, "ca.pem"))
	}
	return &tls.Config{
		Certificates:       []tls.Certificate{cert},
		RootCAs:            pool,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: !t.Verify, // the operator's tls_verify = false
	}, nil
}

// isTLSError tells a refused handshake (either side's certificate) from an
// Engine that is not there.
func isTLSError(err error) bool {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var verify *tls.CertificateVerificationError
	var alert tls.AlertError
	return errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &verify) || errors.As(err, &alert) ||
		strings.Contains(err.Error(), "remote error: tls:") || strings.Contains(err.Error(), "x509:")
}
