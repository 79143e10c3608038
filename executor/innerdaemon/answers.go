package innerdaemon

import (
	"bytes"
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

// bufferedBody is an answer read whole (and a list cut to its first
// elements), handed on to the client's decoder.
type bufferedBody struct {
	*bytes.Reader
	orig io.Closer
}

func (b bufferedBody) Close() error { return b.orig.Close() }

// maxNesting bounds how deep the daemon's JSON may nest: a real answer
// nests a few levels.
const maxNesting = 64

// boundArrays scans the JSON answer in data: an array in it with more
// than max elements, at any depth (a list's items hold arrays too: 16 MiB
// of "RepoTags":["",...] is millions of strings), or nesting deeper than
// maxNesting, is an error. With list, data must be an array, and that one
// is cut after its first max+1 elements instead (one more than max, so
// the caller can tell it was longer). It only scans, without allocating:
// the client's decoder still checks the syntax.
func boundArrays(data []byte, max int, list bool) ([]byte, error) {
	if trimmed := bytes.TrimLeft(data, " \t\r\n"); list && (len(trimmed) == 0 || trimmed[0] != '[') {
		return nil, fmt.Errorf("the daemon's list is not a JSON array")
	}
	type open struct {
		array  bool
		commas int
	}
	var stack []open
	inString, escaped := false, false
	for i, c := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		top := len(stack) - 1
		switch c {
		case '"':
			inString = true
		case '[', '{':
			if len(stack) == maxNesting {
				return nil, fmt.Errorf("the daemon's answer nests deeper than %d levels", maxNesting)
			}
			stack = append(stack, open{array: c == '['})
		case ']', '}':
			if top < 0 {
				return data, nil // malformed: the decoder says so
			}
			stack = stack[:top]
		case ',':
			if top < 0 || !stack[top].array {
				break
			}
			stack[top].commas++
			switch {
			case list && top == 0 && stack[top].commas == max+1:
				return append(data[:i:i], ']'), nil
			case (!list || top > 0) && stack[top].commas >= max:
				return nil, fmt.Errorf("the daemon's answer holds an array of more than %d elements", max)
			}
		}
	}
	return data, nil
}
