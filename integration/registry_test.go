package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/container"
	registrytypes "github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// privateRegistry serves a registry on loopback that demands a login, as
// a GitLab container registry does; the outer Engine may use it over HTTP
// because it is on 127.0.0.0/8.
func privateRegistry(t *testing.T, user, password string) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="dind-executor test registry"`)
			http.Error(w, "login required", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// pushPrivate pushes the job image to the registry and removes the local
// name, so only a pull with the right login can bring it back.
func pushPrivate(t *testing.T, host, user, password string) string {
	t.Helper()
	api := dockerAPI(t)
	ctx := context.Background()
	image := host + "/private/app:" + strconv.FormatInt(newJobID(), 36)
	if _, err := api.ImageTag(ctx, client.ImageTagOptions{Source: smallShellImage(t), Target: image}); err != nil {
		t.Fatal(err)
	}
	auth, err := authconfig.Encode(registrytypes.AuthConfig{Username: user, Password: password, ServerAddress: host})
	if err != nil {
		t.Fatal(err)
	}
	push, err := api.ImagePush(ctx, image, client.ImagePushOptions{RegistryAuth: auth})
	if err != nil {
		t.Fatal(err)
	}
	if err := push.Wait(ctx); err != nil {
		t.Fatalf("push %s: %v", image, err)
	}
	removeTag := func() { _, _ = api.ImageRemove(context.Background(), image, client.ImageRemoveOptions{}) }
	removeTag()
	t.Cleanup(removeTag)
	return image
}

// smallShellImage is busybox alone (a few MB, quick to push): enough for a
// build container, whose main process is a shell.
func smallShellImage(t *testing.T) string {
	t.Helper()
	api := dockerAPI(t)
	ctx := context.Background()
	created, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: seedjob.JobImage}})
	if err != nil {
		t.Fatal(err)
	}
	defer api.ContainerRemove(ctx, created.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	busybox, err := api.CopyFromContainer(ctx, created.ID, client.CopyFromContainerOptions{SourcePath: "/bin/busybox"})
	if err != nil {
		t.Fatal(err)
	}
	defer busybox.Content.Close()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(busybox.Content)
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	binary, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
	for name, data := range map[string][]byte{"Dockerfile": []byte(dockerfile), "busybox": binary} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buildContext(t, &buf)
}

// A private image is pulled with the credentials GitLab sends with the job,
// or with the job's DOCKER_AUTH_CONFIG; without them the pull fails as a
// system failure that names the image and the registry's answer.
func TestPrivateImagePulledWithJobCredentials(t *testing.T) {
	const user, password = "gitlab-ci-token", "job-token-for-the-registry"
	host := privateRegistry(t, user, password)
	image := pushPrivate(t, host, user, password)
	authConfig := `{"auths":{"` + host + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(user+":"+password)) + `"}}}`
	config := strings.Replace(seedConfig(), `pull_policy = ["if-not-present"]`, `pull_policy = ["always", "if-not-present"]`, 1)

	// Each case starts with the image absent from the Engine.
	cases := []struct {
		name        string
		credentials []runner.Credential
		variables   []runner.Variable
		wantOutcome runner.OutcomeKind
		wantLog     []string
	}{
		{"job credentials", []runner.Credential{{Type: "registry", URL: host, Username: user, Password: password}}, nil,
			runner.OutcomeSuccess, []string{"Pulling image " + image, "private image runs"}},
		{"DOCKER_AUTH_CONFIG", nil, []runner.Variable{{Key: "DOCKER_AUTH_CONFIG", Value: authConfig}},
			runner.OutcomeSuccess, []string{"Pulling image " + image, "private image runs"}},
		{"no credentials", nil, nil,
			runner.OutcomeSystemFailure, []string{"image " + image + " is not available", "pull policy always"}},
	}
	api := dockerAPI(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _ = api.ImageRemove(context.Background(), image, client.ImageRemoveOptions{})
			job := simpleJob("echo private image runs")
			job.Image = runner.Image{Name: image, PullPolicy: []string{"always"}}
			job.Credentials = tc.credentials
			job.Variables = append(job.Variables, tc.variables...)
			e := newEmulator(t, config)
			e.PrepareAttempts = 1
			res := runJob(t, e, job)
			if res.Outcome.Kind != tc.wantOutcome {
				t.Fatalf("outcome = %s, want %s", res.Outcome, tc.wantOutcome)
			}
			log := runner.PlainText(res.Log)
			for _, want := range tc.wantLog {
				if !strings.Contains(log, want) {
					t.Errorf("job log lacks %q", want)
				}
			}
			if strings.Contains(log, password) {
				t.Error("the job log shows the registry password")
			}
			assertJobLeftNothing(t, job.ID)
		})
	}
}
