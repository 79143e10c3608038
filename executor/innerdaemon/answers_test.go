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
		// The layer cache's calls, and arrays inside a list's items.
		{"disk usage flood", `{"LayersSize":1,"Images":[` + strings.Repeat("{},", 4<<20) + `{}]}`, diskUsageImages, 0, "more than 1000 elements"},
		{"a real disk usage", `{"LayersSize":5,"Images":[{"Size":5,"RepoTags":["a:1"]}],"BuildCache":[]}`, diskUsageImages, 1, ""},
		{"image remove flood", flood, removedCount, 0, "more than 1000 elements"},
		{"build cache prune flood", `{"CachesDeleted":[` + strings.Repeat(`"",`, 4<<20) + `""],"SpaceReclaimed":1}`, prunedCount, 0, "more than 1000 elements"},
		{"one image with a flood of tags", `[{"Id":"a","RepoTags":[` + strings.Repeat(`"",`, (MaxResponse-40)/3) + `""]}]`, imageCount, 0, "more than 1000 elements"},
		{"nesting without end", `{"Images":` + strings.Repeat("[", 4<<20) + strings.Repeat("]", 4<<20) + "}", diskUsageImages, 0, "nests deeper"},
		{"a string holding brackets and commas", `[{"Id":"` + strings.Repeat(`[,\"`, 100000) + `"}]`, imageCount, 1, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("API-Version", "1.41")
				if strings.HasSuffix(r.URL.Path, "/_ping") {
					_, _ = io.WriteString(w, "OK")
					return
				}
				_, _ = io.WriteString(w, tc.body)
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
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("reading the answer allocated %d MiB", alloc>>20)
			}
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

func diskUsageImages(ctx context.Context, c *client.Client) (int, error) {
	res, err := c.DiskUsage(ctx, client.DiskUsageOptions{Images: true, BuildCache: true})
	return len(res.Images.Items), err
}

func removedCount(ctx context.Context, c *client.Client) (int, error) {
	res, err := c.ImageRemove(ctx, "a", client.ImageRemoveOptions{Force: true})
	return len(res.Items), err
}

func prunedCount(ctx context.Context, c *client.Client) (int, error) {
	res, err := c.BuildCachePrune(ctx, client.BuildCachePruneOptions{All: true})
	return len(res.Report.CachesDeleted), err
}
