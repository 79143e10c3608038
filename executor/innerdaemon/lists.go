package innerdaemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// MaxListItems bounds the elements of a list the daemon answers (images,
// containers): MaxResponse bounds the bytes, but 16 MiB of "{}," decode
// into millions of structs, gigabytes for the hook. A job's daemon with
// more than this is reported truncated (what it produced) or not cleaned
// (its layer cache is discarded).
const MaxListItems = 1000

// MaxInspect bounds the answer to a container inspect: a real one is a few
// KiB, and one array of many tiny elements decodes into much more memory
// than its bytes.
const MaxInspect = 256 << 10

// isInspect reports whether a request inspects a container.
func isInspect(req *http.Request) bool {
	path := req.URL.Path
	return req.Method == http.MethodGet && strings.Contains(path, "/containers/") && strings.HasSuffix(path, "/json") && !strings.HasSuffix(path, "/containers/json")
}

// isList reports whether a request asks for one of the lists the executor
// reads.
func isList(req *http.Request) bool {
	if req.Method != http.MethodGet {
		return false
	}
	return strings.HasSuffix(req.URL.Path, "/images/json") || strings.HasSuffix(req.URL.Path, "/containers/json")
}

// firstItems reads a JSON array from body and returns one holding its
// first max+1 elements (one more than max, so the caller can tell the
// list was longer), each kept as the daemon wrote it.
func firstItems(body io.Reader, max int) ([]byte, error) {
	dec := json.NewDecoder(body)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, fmt.Errorf("the daemon's list is not a JSON array (%v)", err)
	}
	out := bytes.NewBufferString("[")
	for n := 0; n <= max && dec.More(); n++ {
		var item json.RawMessage
		if err := dec.Decode(&item); err != nil {
			return nil, fmt.Errorf("the daemon's list, element %d: %w", n, err)
		}
		if n > 0 {
			out.WriteByte(',')
		}
		out.Write(item)
	}
	out.WriteByte(']')
	return out.Bytes(), nil
}

// listBody is a list answer cut to its first elements.
type listBody struct {
	*bytes.Reader
	orig io.Closer
}

func (b listBody) Close() error { return b.orig.Close() }
