package containerfs

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/moby/moby/client"
)

// archiveCopier serves a tar archive made in the test: the Engine cannot be
// made to answer with a FIFO or a huge sparse file on demand.
type archiveCopier struct{ data []byte }

func (a archiveCopier) CopyFromContainer(context.Context, string, client.CopyFromContainerOptions) (client.CopyFromContainerResult, error) {
	return client.CopyFromContainerResult{Content: io.NopCloser(bytes.NewReader(a.data))}, nil
}

type entry struct {
	name string
	kind byte
	size int64
}

func archive(t *testing.T, entries ...entry) archiveCopier {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.kind, Mode: 0o644}
		if e.kind == tar.TypeReg {
			h.Size = e.size
		}
		if e.kind == tar.TypeSymlink {
			h.Linkname = "/dev/zero"
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.kind == tar.TypeReg && e.size <= MaxFile {
			if _, err := tw.Write(bytes.Repeat([]byte("x"), int(e.size))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if entries[len(entries)-1].size <= MaxFile {
		if err := tw.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	return archiveCopier{buf.Bytes()}
}

func TestReadNamedIsBounded(t *testing.T) {
	certs := []entry{{"client/ca.pem", tar.TypeReg, 600}, {"client/cert.pem", tar.TypeReg, 700}, {"client/key.pem", tar.TypeReg, 200}}
	flood := make([]entry, 0, MaxEntries+1)
	for i := range MaxEntries + 1 {
		flood = append(flood, entry{"client/f" + strings.Repeat("x", i%50) + string(rune('a'+i%26)), tar.TypeReg, 1})
	}
	cases := []struct {
		name    string
		entries []entry
		wantErr string
	}{
		{"the three certificate files", certs, ""},
		{"links, FIFOs and devices are skipped", append([]entry{{"client/ca.pem", tar.TypeSymlink, 0}, {"client/cert.pem", tar.TypeFifo, 0}, {"client/key.pem", tar.TypeChar, 0}}, certs...), ""},
		{"a huge (sparse) file is refused before it is read", append([]entry{{"client/junk", tar.TypeReg, 1 << 40}}, certs...), "more than the"},
		{"a flood of files is refused", flood, "more than 64 entries"},
		{"a missing file is an error", certs[:2], "no regular file key.pem"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a archiveCopier
			if tc.entries[0].size == 1<<40 {
				// Only the header: the reader must stop there.
				a = archive(t, tc.entries[0])
			} else {
				a = archive(t, tc.entries...)
			}
			files, err := ReadNamed(context.Background(), a, "c", "/certs/client", "ca.pem", "cert.pem", "key.pem")
			if tc.wantErr == "" {
				if err != nil || len(files["ca.pem"]) != 600 || len(files["key.pem"]) != 200 {
					t.Fatalf("files %v, err %v", len(files), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
		})
	}
}
