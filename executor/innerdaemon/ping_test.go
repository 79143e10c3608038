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
