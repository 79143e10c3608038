// Package containerfs reads files out of a container through the Engine
// API, into memory: nothing read from a container touches the host's disk.
// A container's files may be the job's, so every read is bounded in
// entries and bytes and skips anything but regular files (links, devices,
// FIFOs), whatever the job put there.
package containerfs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"

	"github.com/moby/moby/client"
)

// Copier is the Engine call the readers need; *client.Client has it.
type Copier interface {
	CopyFromContainer(ctx context.Context, container string, opts client.CopyFromContainerOptions) (client.CopyFromContainerResult, error)
}

const (
	// MaxFile bounds what is kept of one file: certificates and keys are a
	// few hundred bytes.
	MaxFile = 64 << 10
	// MaxEntries bounds how many archive entries are looked at: a
	// certificate directory holds three files, not a flood.
	MaxEntries = 64
)

// ReadFiles copies a file, or the regular files of a directory, out of a
// container, keyed by base name. It fails when the archive holds more than
// MaxEntries entries.
func ReadFiles(ctx context.Context, api Copier, container, source string) (map[string][]byte, error) {
	return read(ctx, api, container, source, nil)
}

// ReadNamed reads only the named regular files of a directory and stops as
// soon as it has them all.
func ReadNamed(ctx context.Context, api Copier, container, dir string, names ...string) (map[string][]byte, error) {
	files, err := read(ctx, api, container, dir, names)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, ok := files[n]; !ok {
			return files, fmt.Errorf("read %s from %s: no regular file %s", dir, container, n)
		}
	}
	return files, nil
}

func read(ctx context.Context, api Copier, container, source string, names []string) (map[string][]byte, error) {
	res, err := api.CopyFromContainer(ctx, container, client.CopyFromContainerOptions{SourcePath: source})
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", source, container, err)
	}
	defer res.Content.Close()
	// Closing the stream is what ends a read the Engine keeps feeding.
	stop := context.AfterFunc(ctx, func() { res.Content.Close() })
	defer stop()
	files := map[string][]byte{}
	tr := tar.NewReader(res.Content)
	for entries := 0; ; entries++ {
		if names != nil && len(files) == len(names) {
			return files, nil
		}
		if entries == MaxEntries {
			return nil, fmt.Errorf("read %s from %s: more than %d entries: not what the executor put there", source, container, MaxEntries)
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s from %s: %w", source, container, err)
		}
		// Checked before skipping too: skipping an entry reads through it.
		if h.Size > MaxFile {
			return nil, fmt.Errorf("read %s from %s: %s is %d bytes, more than the %d a certificate takes", source, container, h.Name, h.Size, MaxFile)
		}
		name := path.Base(h.Name)
		if h.Typeflag != tar.TypeReg || (names != nil && !slices.Contains(names, name)) {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(tr, MaxFile))
		if err != nil {
			return nil, fmt.Errorf("read %s from %s: %w", h.Name, container, err)
		}
		files[name] = data
	}
}
