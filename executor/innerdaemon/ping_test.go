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
			resp, err := hc.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			n, err := io.Copy(io.Discard, resp.Body)
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
func TestVersion(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       VersionInfo
		wantErr    bool
	}{
		{"a daemon", `{"Version":"26.1.5+dfsg1","ApiVersion":"1.45","Os":"linux"}`, VersionInfo{"26.1.5+dfsg1", "1.45"}, false},
		{"control characters", "{\"Version\":\"27\\u001b[31m\\n\",\"ApiVersion\":\"1.47\"}", VersionInfo{"27?[31m?", "1.47"}, false},
		{"not JSON", "hello", VersionInfo{}, true},
		{"too large", `{"Version":"` + strings.Repeat("x", maxVersionAnswer) + `"}`, VersionInfo{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/version" {
					http.NotFound(w, r)
					return
				}
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			got, err := Version(t.Context(), srv.Client(), strings.TrimPrefix(srv.URL, "https://"))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("Version = %+v, %v; want %+v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
