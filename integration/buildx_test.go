package integration

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// buildkitImage is the BuildKit image for buildx's docker-container driver
// that integration/images/build.sh makes (buildkitd and buildctl compiled
// from source, Debian's runc): moby/buildkit cannot be pulled here.
const buildkitImage = "dind-executor.local/buildkit:test"

// buildkitArchive is where jobs find buildkitImage as a `docker save`
// archive, standing in for a registry the job's daemon would pull it from.
const buildkitArchive = "/srv/buildkit/buildkit.tar"

// buildxConfig is the seed config plus a read-only bind of a directory
// holding buildkitImage as buildkitArchive.
func buildxConfig(t *testing.T) string {
	t.Helper()
	api := dockerAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := api.ImageInspect(ctx, buildkitImage); err != nil {
		t.Fatalf("image %s is missing (%v): run `make setup` (integration/images/build.sh) first", buildkitImage, err)
	}
	dir := t.TempDir()
	save, err := api.ImageSave(ctx, []string{buildkitImage})
	if err != nil {
		t.Fatal(err)
	}
	defer save.Close()
	f, err := os.Create(filepath.Join(dir, filepath.Base(buildkitArchive)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, save); err != nil {
		t.Fatalf("save %s: %v", buildkitImage, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return strings.Replace(seedConfig(), `volumes = ["`, `volumes = ["`+dir+":"+filepath.Dir(buildkitArchive)+`:ro", "`, 1)
}

var cacheExport = regexp.MustCompile(`cache export: \.buildx-cache/index\.json and (\d+) blobs`)

// BuildKit and buildx as a user writes them in .gitlab-ci.yml, against the
// sandbox's daemon over mutual TLS: `DOCKER_BUILDKIT=1 docker build`,
// `docker buildx build` with the default builder, and what needs more
// than that (and says so).
func TestBuildKitAndBuildxInTheSandbox(t *testing.T) {
	t.Parallel()
	config := buildxConfig(t)
	sha := env.repoSHA
	cases := []struct {
		name    string
		script  []string
		failure bool     // want a build failure instead of success
		want    []string // in the job log
		wantNot []string
		ran     bool // the seed RUN step ran, from no cache
	}{
		{
			name:   "DOCKER_BUILDKIT=1 docker build",
			script: []string{"cp /bin/busybox .", "DOCKER_BUILDKIT=1 docker build -t my-app:$CI_COMMIT_SHA .", "docker run --rm my-app:$CI_COMMIT_SHA"},
			want: []string{`#0 building with "default" instance using docker driver`,
				"naming to docker.io/library/my-app:" + sha, seedjob.AppGreeting},
			wantNot: []string{"Step 1/", "legacy builder"},
			ran:     true,
		},
		{
			name:   "docker buildx build with the default builder",
			script: []string{"cp /bin/busybox .", "docker buildx build --load -t my-app:$CI_COMMIT_SHA .", "docker run --rm my-app:$CI_COMMIT_SHA"},
			want: []string{`#0 building with "default" instance using docker driver`,
				"naming to docker.io/library/my-app:" + sha, seedjob.AppGreeting},
			ran: true,
		},
		{
			name:    "the default builder cannot export a cache",
			script:  []string{"cp /bin/busybox .", "docker buildx build --cache-to type=local,dest=/tmp/buildx-cache -t my-app:$CI_COMMIT_SHA ."},
			failure: true,
			want:    []string{"Cache export is not supported for the docker driver"},
		},
		{
			name:    "a docker-container builder needs a docker context",
			script:  []string{"docker buildx create --use --driver docker-container --driver-opt image=" + buildkitImage},
			failure: true,
			want:    []string{"could not create a builder instance with TLS data loaded from environment"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			job := simpleJob(tc.script...)
			res := runJob(t, newEmulator(t, config), job)
			log := runner.PlainText(res.Log)
			if tc.failure {
				if res.Outcome.Kind != runner.OutcomeBuildFailure {
					t.Fatalf("outcome = %s, want build failure", res.Outcome)
				}
			} else if res.Outcome.Kind != runner.OutcomeSuccess {
				t.Fatalf("outcome = %s, want success", res.Outcome)
			}
			for _, want := range tc.want {
				if !strings.Contains(log, want) {
					t.Errorf("job log lacks %q", want)
				}
			}
			for _, not := range tc.wantNot {
				if strings.Contains(log, not) {
					t.Errorf("job log has %q", not)
				}
			}
			if tc.ran {
				if found, cached := stepCached(log, seedRunStep); !found || cached {
					t.Errorf("%q: found %v, cached %v; want it run from no cache", seedRunStep, found, cached)
				}
			}
			assertJobLeftNothing(t, job.ID)
		})
	}
}

// The docker-container driver with the one extra line buildx needs under
// DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH (a docker context made
// from them), its BuildKit image loaded into the job's own daemon, and a
// local cache export carried to the project's next job by the runner's
// cache: the next job, in a new sandbox with an empty daemon and a new
// builder, takes the build's steps from that cache.
func TestBuildxContainerBuilderExportsALocalCacheTheNextJobUses(t *testing.T) {
	t.Parallel()
	config := buildxConfig(t)
	project := newJobID()
	t.Cleanup(func() { removeVolumes(t, executor.LabelProjectID, strconv.FormatInt(project, 10)) })
	script := []string{
		"docker load -i " + buildkitArchive,
		"docker context create tls-environment",
		"docker buildx create --use --driver-opt image=" + buildkitImage + " tls-environment",
		"cp /bin/busybox .",
		"docker buildx build --cache-from type=local,src=.buildx-cache --cache-to type=local,dest=.buildx-cache-new,mode=max --load -t my-app:$CI_COMMIT_SHA .",
		"rm -rf .buildx-cache && mv .buildx-cache-new .buildx-cache",
		"docker run --rm my-app:$CI_COMMIT_SHA",
		"docker buildx ls",
		`echo "cache export: $(ls .buildx-cache/index.json) and $(ls .buildx-cache/blobs/sha256 | wc -l) blobs"`,
	}
	e := newEmulator(t, config)
	for i, wantCached := range []bool{false, true} {
		job := simpleJob(script...)
		job.ProjectID = project
		job.Cache = []runner.Cache{{Key: "buildx", Paths: []string{".buildx-cache/"}}}
		res := runJob(t, e, job)
		if res.Outcome.Kind != runner.OutcomeSuccess {
			t.Fatalf("job %d: outcome = %s, want success", i+1, res.Outcome)
		}
		log := runner.PlainText(res.Log)
		for _, want := range []string{
			"Loaded image: " + buildkitImage,
			"using docker-container driver",
			"#1 pulling failed, using local image " + buildkitImage,
			"importing to docker", // --load: the result went to the job's daemon
			seedjob.AppGreeting,   // and ran there
		} {
			if !strings.Contains(log, want) {
				t.Errorf("job %d: log lacks %q", i+1, want)
			}
		}
		if m := cacheExport.FindStringSubmatch(log); m == nil || m[1] == "0" {
			t.Errorf("job %d: the local cache export is missing or empty (%q)", i+1, m)
		}
		if got := strings.Contains(log, "importing cache manifest from local"); got != wantCached {
			t.Errorf("job %d: imported a local cache = %v, want %v", i+1, got, wantCached)
		}
		// The steps only job 1's export can hold for job 2's fresh
		// BuildKit: the toolchain's COPY always; the RUN whenever the COPY
		// of src/ before it was cached too (on a loaded machine BuildKit
		// now and then re-runs that COPY, and so the RUN, for a reason not
		// of ours: the manifest was imported, the steps before it cached).
		if found, cached := stepCached(log, toolchainStep); !found || cached != wantCached {
			t.Errorf("job %d: %q found %v, cached %v; want cached %v", i+1, toolchainStep, found, cached, wantCached)
		}
		found, cached := stepCached(log, seedRunStep)
		_, sourcesCached := stepCached(log, sourcesStep)
		switch {
		case !found:
			t.Errorf("job %d: no %q step in the log", i+1, seedRunStep)
		case !wantCached && cached:
			t.Errorf("job %d: %q was cached in the first job", i+1, seedRunStep)
		case wantCached && sourcesCached && !cached:
			t.Errorf("job %d: %q was not cached though the step before it was", i+1, seedRunStep)
		case wantCached && !sourcesCached:
			t.Logf("job %d: BuildKit re-ran %q (and so the RUN) despite the imported cache:\n%s", i+1, sourcesStep, log)
		}
		assertJobLeftNothing(t, job.ID)
	}
}

// Where buildx's docker-container driver puts the BuildKit container (and
// so every RUN step of its builds) in the cgroup tree. The sandbox's limits
// bind the daemon container's cgroup, under which the containers a job
// runs nest (/docker/<daemon>/inner/...). buildx sets the BuildKit
// container's cgroup parent to /docker/buildx when the daemon uses
// cgroupfs; with the host's cgroup tree in the daemon container (the
// capabilities profile on cgroup v1) that is a cgroup beside the sandbox,
// outside its limits. A relative parent, --driver-opt cgroup-parent=buildx,
// nests it under the daemon container, as the README says.
func TestBuildxBuilderCgroupParent(t *testing.T) {
	t.Parallel()
	config := buildxConfig(t)
	job := simpleJob(
		"docker load -i "+buildkitArchive,
		"docker context create tls-environment",
		"docker buildx create --bootstrap --name plain --driver-opt image="+buildkitImage+" tls-environment",
		"docker buildx create --bootstrap --name nested --driver-opt cgroup-parent=buildx --driver-opt image="+buildkitImage+" tls-environment",
		`mkdir -p /tmp/bb && cp /bin/busybox /tmp/bb/ && printf 'FROM scratch\nCOPY busybox /bin/busybox\n' > /tmp/bb/Dockerfile && docker build -q -t bb /tmp/bb`,
		`echo "job container $(docker run --rm bb /bin/busybox grep :memory: /proc/self/cgroup)"`,
		`for b in plain nested; do echo "builder $b $(docker run --rm --pid container:buildx_buildkit_${b}0 bb /bin/busybox grep :memory: /proc/1/cgroup)"; done`,
	)
	res := runJob(t, newEmulator(t, config), job)
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	log := runner.PlainText(res.Log)
	cgroup := func(what string) string {
		m := regexp.MustCompile(`(?m)^` + what + ` \d+:memory:(/\S*)$`).FindStringSubmatch(log)
		if m == nil {
			t.Fatalf("the job printed no memory cgroup for %s", what)
		}
		return m[1]
	}
	daemon, _, ok := strings.Cut(cgroup("job container"), "/inner/")
	if !ok || !strings.HasPrefix(daemon, "/docker/") {
		t.Fatalf("the job's container is in %q, not under its daemon's /docker/<id>/inner/", cgroup("job container"))
	}
	if got := cgroup("builder plain"); !strings.HasPrefix(got, "/docker/buildx/") {
		t.Errorf("buildx's default builder is in %q, want /docker/buildx/<id> (update the README if buildx changed)", got)
	}
	if got := cgroup("builder nested"); !strings.HasPrefix(got, daemon+"/buildx/") {
		t.Errorf("the builder made with cgroup-parent=buildx is in %q, want it under the daemon container's %s/buildx/", got, daemon)
	}
	assertJobLeftNothing(t, job.ID)
}
