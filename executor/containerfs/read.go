// Package containerfs reads files out of a container through the Engine
// API, into memory: nothing read from a container touches the host's disk.
package containerfs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/moby/moby/client"
)

// Copier is the Engine call ReadFiles needs; *client.Client has it.
type Copier interface {
	CopyFromContainer(ctx context.Context, container string, opts client.CopyFromContainerOptions) (client.CopyFromContainerResult, error)
}

// MaxFile bounds what ReadFiles keeps of one file: certificates and keys
// are a few hundred bytes, whatever a job put there instead.
const MaxFile = 64 << 10

// ReadFiles copies a file, or the regular files of a directory, out of a
// container, keyed by base name. Links, devices and FIFOs are skipped, and
// each file is cut at MaxFile.
func ReadFiles(ctx context.Context, api Copier, container, source string) (map[string][]byte, error) {
	res, err := api.CopyFromContainer(ctx, container, client.CopyFromContainerOptions{SourcePath: source})
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", source, container, err)
	}
	defer res.Content.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(res.Content)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s from %s: %w", source, container, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(tr, MaxFile))
		if err != nil {
			return nil, fmt.Errorf("read %s from %s: %w", h.Name, container, err)
		}
		files[path.Base(h.Name)] = data
	}
}
