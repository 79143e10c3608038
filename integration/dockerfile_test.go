package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/dind-executor/dind-executor/integration/tarball"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// The repository's Dockerfile builds the runner image from local images
// only: a Go image made from this machine's toolchain, the module's
// dependencies vendored into the build context, and a stand-in runner base.
// The image must carry a working dind-executor and its config.
func TestRunnerImageDockerfile(t *testing.T) {
	t.Parallel()
	api := dockerAPI(t)
	ctx := context.Background()
	goImage := goToolchainImage(t, api)

	buildContext := moduleContext(t)
	tag := "dind-executor.local/runner-image-test:" + fmt.Sprint(newJobID())
	version := "test-" + fmt.Sprint(newJobID())
	res, err := api.ImageBuild(ctx, buildContext, client.ImageBuildOptions{
		Tags:   []string{tag},
		Remove: true, ForceRemove: true,
		// The builder stage's images inherit goImage's label; the final
		// stage's are parents of this one.
		NoCache: true, Labels: map[string]string{testImageLabel: ownImages(t)},
		// Everything the build needs is in the context (vendor/): no network.
		NetworkMode: "none",
		BuildArgs: map[string]*string{
			"GO_IMAGE": &goImage, "RUNNER_IMAGE": ptr(seedjob.JobImage), "VERSION": &version,
		},
	})
	if err != nil {
		t.Fatalf("build the runner image: %v", err)
	}
	output := buildOutput(t, res.Body)
	if _, err := api.ImageInspect(ctx, tag); err != nil {
		t.Fatalf("the Dockerfile did not produce %s: %v\n%s", tag, err, output)
	}

	cases := []struct {
		name string
		cmd  []string
		want string
	}{
		{"binary runs", []string{"dind-executor", "version"}, "dind-executor " + version},
		{"shipped config is valid", []string{"dind-executor", "--config", "/etc/dind-executor/config.toml", "config"}, `"driver":{"name":"dind-executor"`},
		{"runner config sample wires the four hooks", []string{"grep", "-c", `_exec = "/usr/local/bin/dind-executor"`, "/etc/gitlab-runner/config.toml.sample"}, "4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := runContainer(t, api, tag, tc.cmd)
			if !strings.Contains(out, tc.want) {
				t.Errorf("%v printed %q, want %q", tc.cmd, out, tc.want)
			}
		})
	}
	// Started as the README's docker run line starts it (socket, default
	// bridge), the image's own dind-executor runs a job end to end; the
	// runner emulator stands in for gitlab-runner, which the stand-in base
	// does not have.
	t.Run("drives a job from the default bridge", func(t *testing.T) {
		driveJobInRunnerContainer(t, tag, "/usr/local/bin/dind-executor", nil)
	})
}

// goToolchainImage is the job image plus this machine's Go toolchain,
// committed from a container (no registry, no build context of 200 MB).
// It is removed when the test ends, with every image built on it.
func goToolchainImage(t *testing.T, api *client.Client) string {
	t.Helper()
	ctx := context.Background()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	goroot := strings.TrimSpace(string(out))
	created, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: seedjob.JobImage, Cmd: []string{"true"}},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer api.ContainerRemove(ctx, created.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarball.Dir(pw, goroot, "usr/local/go", notForGoBuild)) }()
	if _, err := api.CopyToContainer(ctx, created.ID, client.CopyToContainerOptions{DestinationPath: "/", Content: pr}); err != nil {
		t.Fatalf("copy the Go toolchain: %v", err)
	}
	cache, err := goBuildCache(t)
	if err != nil {
		t.Fatalf("the build cache of dind-executor's packages: %v", err)
	}
	if _, err := api.CopyToContainer(ctx, created.ID, client.CopyToContainerOptions{DestinationPath: "/", Content: cache}); err != nil {
		t.Fatalf("copy the Go build cache: %v", err)
	}
	tag := "dind-executor.local/go-test:" + fmt.Sprint(newJobID())
	if _, err := api.ContainerCommit(ctx, created.ID, client.ContainerCommitOptions{
		Reference: tag,
		Changes: []string{
			"ENV PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ENV GOFLAGS=-buildvcs=false", "ENV GOTOOLCHAIN=local",
			"ENV GOCACHE=" + goCacheInImage,
			"LABEL " + testImageLabel + "=" + ownImages(t),
		},
	}); err != nil {
		t.Fatalf("commit the Go image: %v", err)
	}
	return tag
}

// notForGoBuild selects the parts of GOROOT that go build of a program
// does not read (the toolchain's own sources, tests, docs, the tools of go
// test and go fix): half of its 270 MB, which the image need not carry.
func notForGoBuild(rel string) bool {
	switch rel {
	case "test", "api", "doc", "misc", "src/cmd":
		return true
	}
	switch base := path.Base(rel); {
	case base == "testdata":
		return true
	case strings.HasPrefix(rel, "pkg/tool/"):
		return base == "cover" || base == "fix" || base == "vet" || base == "preprofile"
	}
	return false
}

// goCacheInImage is where the Go image keeps its build cache.
const goCacheInImage = "/root/.cache/go-build"

// goBuildCache is a tar stream of the entries of this machine's Go build
// cache that hold dind-executor's packages compiled as the Dockerfile
// compiles them (CGO_ENABLED=0, -trimpath, which makes them independent of
// the module's directory and of vendor/): TestMain built the suite's
// binary that way, so they are there. With them the image's build
// compiles only its main package, which its version stamp changes, instead
// of ~290 packages: about 100 CPU-seconds on a 2-CPU machine running the
// other tests. An entry is an index file (action id -> output id) and its
// output; only outputs `go list -export` names are taken, with the index
// files that point at them.
func goBuildCache(t *testing.T) (io.Reader, error) {
	t.Helper()
	list := exec.Command("go", "list", "-trimpath", "-export", "-deps", "-f", "{{.Export}}", "../cmd/dind-executor")
	list.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := list.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -export: %w", err)
	}
	cacheDir, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOCACHE: %w", err)
	}
	root := strings.TrimSpace(string(cacheDir))
	outputs := map[string]bool{} // output id (hex)
	for _, path := range strings.Fields(string(out)) {
		if id, ok := strings.CutSuffix(filepath.Base(path), "-d"); ok && strings.HasPrefix(path, root) {
			outputs[id] = true
		}
	}
	if len(outputs) < 100 {
		t.Logf("go list -export named only %d cached packages: the image's build compiles the rest", len(outputs))
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	taken := map[string]bool{}
	add := func(path string) error {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(goCacheInImage, "/") + "/" + rel, Mode: 0o644, Size: int64(len(data))}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	}
	// The index files are few bytes each; their outputs are where go
	// list said, in the directory named by the id's first two digits.
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(d.Name(), "-a") {
			return err
		}
		data, err := os.ReadFile(path)
		f := strings.Fields(string(data)) // "v1 <action id> <output id> <size> <time>"
		if err != nil || len(f) < 3 || !outputs[f[2]] {
			return nil
		}
		taken[f[2]] = true
		if err := add(path); err != nil {
			return err
		}
		return add(filepath.Join(root, f[2][:2], f[2]+"-d"))
	})
	if len(taken) < len(outputs) {
		t.Logf("%d of the %d packages' outputs have no index entry in %s: the image's build compiles them", len(outputs)-len(taken), len(outputs), root)
	}
	if err == nil {
		err = tw.Close()
	}
	return &buf, err
}

// moduleContext is the module's source with its dependencies vendored, as
// a tar stream for the Engine.
func moduleContext(t *testing.T) io.Reader {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	vendor := filepath.Join(t.TempDir(), "vendor")
	cmd := exec.Command("go", "mod", "vendor", "-o", vendor)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go mod vendor: %v\n%s", err, out)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	skip := func(rel string) bool {
		return rel == ".git" || rel == "bin" || rel == "vendor" || strings.HasSuffix(rel, "/testdata/fuzz")
	}
	if err := tarball.Add(tw, root, "", skip); err != nil {
		t.Fatal(err)
	}
	if err := tarball.Add(tw, vendor, "vendor", nil); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// buildOutput reads the build's JSON stream and fails on a build error.
func buildOutput(t *testing.T, body io.ReadCloser) string {
	t.Helper()
	defer body.Close()
	var out strings.Builder
	dec := json.NewDecoder(body)
	for {
		var msg struct {
			Stream      string `json:"stream"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return out.String()
		} else if err != nil {
			t.Fatalf("read build output: %v\n%s", err, out.String())
		}
		out.WriteString(msg.Stream)
		if msg.ErrorDetail != nil {
			t.Fatalf("build failed: %s\n%s", msg.ErrorDetail.Message, out.String())
		}
	}
}

// runContainer runs cmd in image and returns its combined output.
func runContainer(t *testing.T, api *client.Client, image string, cmd []string) string {
	t.Helper()
	ctx := context.Background()
	created, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: image, Entrypoint: cmd[:1], Cmd: cmd[1:]},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer api.ContainerRemove(ctx, created.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if _, err := api.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	wait := api.ContainerWait(ctx, created.ID, client.ContainerWaitOptions{})
	select {
	case err := <-wait.Error:
		t.Fatal(err)
	case <-wait.Result:
	}
	logs, err := api.ContainerLogs(ctx, created.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	var out bytes.Buffer
	_, _ = stdcopyAll(&out, logs)
	return out.String()
}
