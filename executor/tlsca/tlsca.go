// Package tlsca makes the per-job certificate authority that ties a build
// container to its own Docker-in-Docker daemon. Everything is generated in
// memory (ECDSA P-256) and never written to the host's disk: the PEM bytes
// travel to the containers through the Engine API.
package tlsca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// DaemonServerName is the DNS name every job's daemon answers to, inside the
// job network (the docker:dind service alias pipelines expect) and in the
// executor's own readiness check.
const DaemonServerName = "docker"

// clockSkew backdates NotBefore so a container whose clock runs slightly
// behind the executor's still accepts the certificates.
const clockSkew = 5 * time.Minute

// PEMPair is one certificate with its private key, PEM encoded.
type PEMPair struct {
	Cert []byte
	Key  []byte
}

// Bundle is one job's CA with the daemon's server pair and the job's client pair.
type Bundle struct {
	CACert   []byte // PEM
	Server   PEMPair
	Client   PEMPair
	NotAfter time.Time

	caX509 *x509.Certificate
}

// New makes a fresh CA named after the sandbox, a server certificate for the
// daemon (docker, localhost, 127.0.0.1, and the extra names it answers to)
// and a client certificate, all valid for the given lifetime.
func New(sandboxID string, lifetime time.Duration, extraNames ...string) (*Bundle, error) {
	now := time.Now()
	notBefore, notAfter := now.Add(-clockSkew), now.Add(lifetime)

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	caTemplate := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "dind-executor CA " + sandboxID},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, caCert, err := sign(caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign CA certificate: %w", err)
	}

	server, err := leaf(caCert, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: DaemonServerName},
		DNSNames:    append([]string{DaemonServerName, "localhost"}, extraNames...),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	client, err := leaf(caCert, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "job " + sandboxID},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	return &Bundle{
		CACert:   pemBlock("CERTIFICATE", caDER),
		Server:   server,
		Client:   client,
		NotAfter: notAfter,
		caX509:   caCert,
	}, nil
}

// Fingerprint is the SHA-256 of the CA certificate, for the audit trail.
func (b *Bundle) Fingerprint() string {
	sum := sha256.Sum256(b.caX509.Raw)
	return hex.EncodeToString(sum[:])
}

// CertInfo identifies a certificate, for the audit trail.
type CertInfo struct {
	Fingerprint string // SHA-256 of the certificate (DER), hex
	NotBefore   time.Time
	NotAfter    time.Time
}

// InfoPEM reads a PEM certificate's fingerprint and validity.
func InfoPEM(certPEM []byte) (CertInfo, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return CertInfo{}, errors.New("not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return CertInfo{}, fmt.Errorf("parse certificate: %w", err)
	}
	sum := sha256.Sum256(cert.Raw)
	return CertInfo{Fingerprint: hex.EncodeToString(sum[:]), NotBefore: cert.NotBefore, NotAfter: cert.NotAfter}, nil
}

// ClientTLSConfig is what the executor uses to reach the job's daemon: the
// client pair, and only this job's CA as root.
func (b *Bundle) ClientTLSConfig() (*tls.Config, error) {
	return ClientTLSConfig(b.CACert, b.Client)
}

// ClientTLSConfig builds a mutual-TLS client configuration from PEM bytes
// that trusts only the given CA and verifies the daemon as DaemonServerName,
// whatever address it is dialled at.
func ClientTLSConfig(caPEM []byte, client PEMPair) (*tls.Config, error) {
	pair, err := tls.X509KeyPair(client.Cert, client.Key)
	if err != nil {
		return nil, fmt.Errorf("load client key pair: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("load CA certificate: no PEM certificate found")
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      roots,
		ServerName:   DaemonServerName,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

func leaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, template *x509.Certificate) (PEMPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return PEMPair{}, fmt.Errorf("generate key: %w", err)
	}
	der, _, err := sign(template, ca, &key.PublicKey, caKey)
	if err != nil {
		return PEMPair{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return PEMPair{}, fmt.Errorf("encode key: %w", err)
	}
	return PEMPair{Cert: pemBlock("CERTIFICATE", der), Key: pemBlock("EC PRIVATE KEY", keyDER)}, nil
}

func sign(template, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) ([]byte, *x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("serial number: %w", err)
	}
	template.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, template, parent, pub, signer)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return der, cert, nil
}

func pemBlock(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}
