package executor

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"gitlab.com/dind-executor/dind-executor/executor/tlsca"
)

// certFile is one PEM file to place in a container.
type certFile struct {
	path string // absolute, inside the container
	data []byte
	mode int64
}

// daemonCertFiles is the server side of the official DOCKER_TLS_CERTDIR
// layout. ca/cert.pem without ca/key.pem tells the docker:dind entrypoint
// that the CA is managed elsewhere, so it generates nothing.
func daemonCertFiles(b *tlsca.Bundle) []certFile {
	return []certFile{
		{CertDir + "/ca/cert.pem", b.CACert, 0o644},
		{CertDir + "/server/ca.pem", b.CACert, 0o644},
		{CertDir + "/server/cert.pem", b.Server.Cert, 0o644},
		{CertDir + "/server/key.pem", b.Server.Key, 0o600},
	}
}

// clientCertFiles is what the docker CLI reads from DOCKER_CERT_PATH; the
// key is readable by its owner only.
func clientCertFiles(caPEM []byte, client tlsca.PEMPair) []certFile {
	return []certFile{
		{ClientCertDir + "/ca.pem", caPEM, 0o644},
		{ClientCertDir + "/cert.pem", client.Cert, 0o644},
		{ClientCertDir + "/key.pem", client.Key, 0o600},
	}
}

// Where the daemon table's files go in the daemon container.
const (
	// registryCertsDir is dockerd's per-registry TLS directory: a
	// registry's CA is <dir>/<host[:port]>/ca.crt.
	registryCertsDir = "/etc/docker/certs.d"
	// daemonConfigFile is the daemon.json the executor writes (features);
	// the image's own /etc/docker/daemon.json is then not read.
	daemonConfigFile = "/etc/dind-executor/daemon.json"
)

// daemonSettingFiles are the files the daemon table puts in the daemon
// container before it starts: each registry's CA, and a daemon.json when
// features are set.
func daemonSettingFiles(d DaemonSpec) ([]certFile, error) {
	var files []certFile
	registries := slices.Sorted(maps.Keys(d.RegistryCAs))
	for _, reg := range registries {
		// The config checked the name; a path out of certs.d is refused
		// here too.
		if reg == "" || reg == "." || reg == ".." || strings.ContainsAny(reg, "/\\\x00") {
			return nil, fmt.Errorf("registry %q cannot name a directory under %s", reg, registryCertsDir)
		}
		files = append(files, certFile{registryCertsDir + "/" + reg + "/ca.crt", d.RegistryCAs[reg], 0o644})
	}
	if len(d.Features) > 0 {
		data, err := json.Marshal(struct {
			Features map[string]bool `json:"features"`
		}{d.Features})
		if err != nil {
			return nil, fmt.Errorf("daemon.json: %w", err)
		}
		files = append(files, certFile{daemonConfigFile, data, 0o644})
	}
	return files, nil
}

// certArchive packs files (and their parent directories) into a tar stream
// rooted at "/", built in memory so no key ever touches the host's disk.
func certArchive(files []certFile) (*bytes.Buffer, error) { return certArchiveOwned(files, 0, 0) }

// certArchiveOwned is certArchive with every entry owned by uid:gid.
func certArchiveOwned(files []certFile, uid, gid int) (*bytes.Buffer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	seen := map[string]bool{}
	for _, f := range files {
		var dirs []string
		for d := path.Dir(f.path); d != "/" && !seen[d]; d = path.Dir(d) {
			dirs = append([]string{d}, dirs...)
			seen[d] = true
		}
		for _, d := range dirs {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d[1:] + "/", Mode: 0o755, ModTime: now, Uid: uid, Gid: gid}); err != nil {
				return nil, fmt.Errorf("archive directory %s: %w", d, err)
			}
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.path[1:], Mode: f.mode, Size: int64(len(f.data)), ModTime: now, Uid: uid, Gid: gid}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("archive %s: %w", f.path, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("archive %s: %w", f.path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close archive: %w", err)
	}
	return &buf, nil
}
