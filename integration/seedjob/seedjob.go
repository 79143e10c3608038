// Package seedjob is the job of the seed article "Building Docker images
// with GitLab CI", made runnable offline: a repository whose multi-stage
// Dockerfile has a builder stage and a slim final stage copying from it, the
// .gitlab-ci.yml job that builds and runs it inside the sandbox, and a
// dind-executor config that uses the locally built images
// (integration/images/build.sh). The demo and the integration tests share it.
package seedjob

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"gitlab.com/dind-executor/dind-executor/integration/runner"
)

// Images built offline by integration/images/build.sh.
const (
	DaemonImage = "dind-executor.local/dind:test"
	JobImage    = "dind-executor.local/job:test"
	HelperImage = "dind-executor.local/helper:test"
	// RootlessDaemonImage is the dind image of the rootless daemon profile
	// (docker:dind-rootless layout).
	RootlessDaemonImage = "dind-executor.local/dind-rootless:test"
)

// ReadyTimeout is the config's [sandbox] ready_timeout: three times the
// product's default, because the suite starts many daemons at once on a
// two-CPU machine (eight in one test) and a daemon there can take over a
// minute to serve; how long readiness takes is the benchmarks' business,
// and the tests of ready_timeout itself set their own.
const ReadyTimeout = "3m"

// RepoMount is where the job's repository is bind-mounted in the sandbox,
// read-only, so get_sources can fetch it without a git server.
const RepoMount = "/srv/git/project"

// AppGreeting is what the built image prints when run.
const AppGreeting = "hello from a multi-stage image built in a dind-executor sandbox"

// repoFiles are the repository's files: no registry is reachable, so the
// image starts FROM scratch and the build context brings busybox (copied in
// by the job from its own image) as the builder's toolchain.
func repoFiles() map[string]string {
	return map[string]string{
		"Dockerfile": `# Builder stage: the toolchain and the sources.
FROM scratch AS builder
COPY busybox /bin/busybox
WORKDIR /usr/src/app
COPY src/ ./src/
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p dist && /bin/busybox sed -e \"s/@VERSION@/$(/bin/busybox cat src/VERSION)/\" src/server.sh.in > dist/server.sh"]

# Final stage: only what runs, copied from the builder.
FROM scratch
COPY --from=builder /bin/busybox /bin/busybox
COPY --from=builder /usr/src/app/dist/server.sh /usr/src/app/server.sh
CMD ["/bin/busybox", "sh", "/usr/src/app/server.sh"]
`,
		"src/VERSION":      "1.0.0\n",
		"src/server.sh.in": "echo \"" + AppGreeting + " (version @VERSION@)\"\n",
		".dockerignore":    ".git\n",
	}
}

// WriteRepo creates the git repository in dir and returns its commit.
func WriteRepo(dir string) (string, error) {
	for name, content := range repoFiles() {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=seed", "GIT_AUTHOR_EMAIL=seed@example.com",
			"GIT_COMMITTER_NAME=seed", "GIT_COMMITTER_EMAIL=seed@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out)), nil
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"commit", "-q", "-m", "multi-stage app"}} {
		if _, err := git(args...); err != nil {
			return "", err
		}
	}
	return git("rev-parse", "HEAD")
}

// Config is a dind-executor config for this machine: local images, the
// capability profile (--privileged cannot apply its capabilities on these
// CI machines), and the repository bind-mounted at RepoMount.
func Config(repoDir string) string {
	return config(repoDir, DaemonImage, "capabilities")
}

// RootlessConfig is Config with the rootless daemon profile and its image.
func RootlessConfig(repoDir string) string {
	return config(repoDir, RootlessDaemonImage, "rootless")
}

func config(repoDir, dindImage, security string) string {
	return fmt.Sprintf(`[sandbox]
dind_image = %q
default_image = %q
helper_image = %q
daemon_security = %q
pull_policy = ["if-not-present"]
ready_timeout = %q
volumes = ["%s:%s:ro"]
`, dindImage, JobImage, HelperImage, security, ReadyTimeout, repoDir, RepoMount)
}

// Job is the seed's "containerize" job: docker:dind style variables, the
// multi-stage build, then a run of the built image.
func Job(id int64, sha string) runner.Job {
	return runner.Job{
		ID:          id,
		Name:        "containerize",
		Stage:       "containerize",
		ProjectID:   4242,
		PipelineID:  id * 10,
		ProjectPath: "seed/my-app",
		RepoURL:     RepoMount,
		SHA:         sha,
		Timeout:     900,
		Image:       runner.Image{Name: JobImage},
		Services:    []runner.Image{{Name: "docker:27-dind", Alias: "docker"}},
		Variables: []runner.Variable{
			runner.Var("DOCKER_HOST", "tcp://docker:2376"),
			runner.Var("DOCKER_TLS_CERTDIR", "/certs"),
		},
		Script: []string{
			"docker info --format 'inner daemon {{.ServerVersion}}, {{.Containers}} containers, driver {{.Driver}}'",
			"cp /bin/busybox .",
			"docker build -t my-app:$CI_COMMIT_SHA .",
			"docker run --rm my-app:$CI_COMMIT_SHA",
			"docker image ls my-app",
		},
		AfterScript: []string{"echo after_script ran"},
	}
}
