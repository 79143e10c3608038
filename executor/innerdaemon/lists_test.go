package innerdaemon

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/moby/moby/client"
)

// A daemon the job controls can answer a list with millions of tiny
// elements within MaxResponse; the client keeps the first MaxListItems+1
// and its memory stays flat. A real dockerd cannot be made to answer so.
func TestListAndInspectAnswersAreBounded(t *testing.T) {
	flood := "[" + strings.Repeat("{},", (MaxResponse-2)/3-1) + "{}]"
	cases := []struct {
		name    string
		body    string
		list    func(ctx context.Context, c *client.Client) (int, error)
		want    int
		wantErr string
	}{
		{"image list flood", flood, imageCount, MaxListItems + 1, ""},
		{"container list flood", flood, containerCount, MaxListItems + 1, ""},
		{"a real image list", `[{"Id":"sha256:a"},{"Id":"sha256:b"}]`, imageCount, 2, ""},
		{"not a list", `{"message":"hello"}`, imageCount, 0, "not a JSON array"},
		{"an inspect of many mounts", `{"Id":"c","Mounts":[` + strings.Repeat("{},", 1<<20) + `{}]}`, mountCount, 0, "larger than 262144 bytes"},
		{"a real inspect", `{"Id":"c","State":{"ExitCode":3},"Mounts":[{}]}`, mountCount, 1, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("API-Version", "1.41")
				if strings.HasSuffix(r.URL.Path, "/json") {
					_, _ = io.WriteString(w, tc.body)
					return
				}
				_, _ = io.WriteString(w, "OK")
			}))
			defer srv.Close()
			c, err := Client(srv.Listener.Addr().String(), srv.Client().Transport.(*http.Transport).TLSClientConfig, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			n, err := tc.list(context.Background(), c)
			runtime.ReadMemStats(&after)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.want {
				t.Errorf("%d items, want %d", n, tc.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
				t.Errorf("reading the list allocated %d MiB", alloc>>20)
			}
		})
	}
}

func imageCount(ctx context.Context, c *client.Client) (int, error) {
	res, err := c.ImageList(ctx, client.ImageListOptions{})
	return len(res.Items), err
}

func containerCount(ctx context.Context, c *client.Client) (int, error) {
	res, err := c.ContainerList(ctx, client.ContainerListOptions{All: true})
	return len(res.Items), err
}

func mountCount(ctx context.Context, c *client.Client) (int, error) {
	res, err := c.ContainerInspect(ctx, "c", client.ContainerInspectOptions{})
	return len(res.Container.Mounts), err
}
