package innerdaemon

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A daemon the job controls can answer with anything: the client stops
// reading at MaxResponse.
func TestResponsesAreBounded(t *testing.T) {
	cases := []struct {
		name    string
		size    int
		wantErr bool
	}{
		{"a real answer", 4 << 10, false},
		{"exactly the bound", MaxResponse, false},
		{"a flood", MaxResponse + 1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.Copy(w, io.LimitReader(zeros{}, int64(tc.size)))
			}))
			defer srv.Close()
			hc := &http.Client{Transport: limitedTransport{next: http.DefaultTransport, max: MaxResponse}}
			// The answer is read whole before the client decodes it, so
			// the bound fails the request itself.
			var n int64
			resp, err := hc.Get(srv.URL)
			if err == nil {
				defer resp.Body.Close()
				n, err = io.Copy(io.Discard, resp.Body)
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("read %d bytes, err %v, want error %v", n, err, tc.wantErr)
			}
			if tc.wantErr && !strings.Contains(err.Error(), "larger than") {
				t.Errorf("err %v", err)
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// /version is read with a bound, and what the job's daemon says is made
// safe to print.
func TestPingReadsTheVersionFromTheHeaders(t *testing.T) {
	for _, tc := range []struct {
		name           string
		server, apiVer string
		want           VersionInfo
	}{
		{"a daemon", "Docker/26.1.5+dfsg1 (linux)", "1.45", VersionInfo{"26.1.5+dfsg1", "1.45"}},
		{"says nothing", "", "", VersionInfo{}},
		{"too long", "Docker/" + strings.Repeat("x", 200), "1", VersionInfo{strings.Repeat("x", 64), "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/_ping" {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Server", tc.server)
				w.Header().Set("API-Version", tc.apiVer)
				_, _ = io.WriteString(w, "OK")
			}))
			defer srv.Close()
			got, err := Ping(t.Context(), srv.Client(), strings.TrimPrefix(srv.URL, "https://"))
			if err != nil || got != tc.want {
				t.Errorf("Ping = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// The job controls its daemon: what it says of itself reaches the job log
// only as a short printable string.
func TestVersionFromHeadersIsPrintable(t *testing.T) {
	h := http.Header{}
	h.Set("Server", "Docker/27\x1b[31m\u202e (linux)")
	h.Set("API-Version", "1.47\x7f")
	if got, want := versionFromHeaders(h), (VersionInfo{"27?[31m?", "1.47?"}); got != want {
		t.Errorf("versionFromHeaders = %+v, want %+v", got, want)
	}
}
