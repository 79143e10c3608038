package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// pgLikeDockerfile is a "database" for service tests: busybox httpd on
// 5432 serving one page, built from the local job image.
const pgLikeDockerfile = `FROM ` + seedjob.JobImage + `
RUN mkdir -p /srv/www && echo "pg-like says hello" > /srv/www/index.html
EXPOSE 5432
CMD ["busybox", "httpd", "-f", "-p", "5432", "-h", "/srv/www"]
`

// tagImage gives an image a second, test-owned name.
func tagImage(t *testing.T, source, target string) string {
	t.Helper()
	api := dockerAPI(t)
	if _, err := api.ImageTag(context.Background(), client.ImageTagOptions{Source: source, Target: target}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = api.ImageRemove(context.Background(), target, client.ImageRemoveOptions{}) })
	return target
}

// A service starts on the job network under the docker executor's aliases
// and the job's own, and the job waits until it accepts connections.
func TestServiceReachableByItsAliases(t *testing.T) {
	t.Parallel()
	image := tagImage(t, buildImage(t, pgLikeDockerfile), "localhost:5000/grp/pglike"+strconv.FormatInt(newJobID(), 36)+":15")
	name := strings.TrimSuffix(strings.TrimPrefix(image, "localhost:5000/"), ":15")
	job := simpleJob(
		"curl -fsS http://db:5432/",
		"curl -fsS http://localhost__"+strings.ReplaceAll(name, "/", "__")+":5432/",
		"curl -fsS http://localhost-"+strings.ReplaceAll(name, "/", "-")+":5432/",
		"docker info --format 'daemon {{.ServerVersion}}'",
	)
	job.Services = append(job.Services, runner.Image{Name: image, Alias: "db"})
	res := runJob(t, newEmulator(t, seedConfig()), job)
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	log := runner.PlainText(res.Log)
	if n := strings.Count(log, "pg-like says hello"); n != 3 {
		t.Errorf("the service answered %d times by alias, want 3", n)
	}
	if !strings.Contains(log, "Service "+image+" is up") {
		t.Error("the job log does not say the service came up")
	}
	if !strings.Contains(log, "Service docker:27-dind: provided by the sandbox's own daemon") || !strings.Contains(log, "daemon ") {
		t.Error("the docker:dind service was not served by the sandbox daemon")
	}
	assertJobLeftNothing(t, job.ID)
}

// A service that never listens is reported with its last log lines, after
// wait_for_services_timeout; the job itself goes on, as under the docker executor.
func TestServiceThatNeverComesUpIsReported(t *testing.T) {
	t.Parallel()
	image := buildImage(t, "FROM "+seedjob.JobImage+"\nEXPOSE 5432\nCMD [\"sh\", \"-c\", \"echo pg-like: starting, but never listening; exec sleep 600\"]\n")
	job := simpleJob("echo the job ran")
	job.Services = []runner.Image{{Name: image, Alias: "db"}}
	config := strings.Replace(seedConfig(), "[sandbox]\n", "[sandbox]\nwait_for_services_timeout = \"2s\"\n", 1)
	res := runJob(t, newEmulator(t, config), job)
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	log := runner.PlainText(res.Log)
	for _, want := range []string{"WARNING: service " + image, "did not accept TCP on port(s) [5432] within 2s", "pg-like: starting, but never listening", "the job ran"} {
		if !strings.Contains(log, want) {
			t.Errorf("job log lacks %q", want)
		}
	}
	assertJobLeftNothing(t, job.ID)
}

// Image entrypoints behave as under the docker executor: one that wraps the
// command runs around it, entrypoint [""] removes one that would not, and
// an entrypoint that does not run the command is a clear system failure.
func TestImageEntrypoints(t *testing.T) {
	t.Parallel()
	wrapping := buildImage(t, "FROM "+seedjob.JobImage+"\nENTRYPOINT [\"sh\", \"-c\", \"echo wrapped > /tmp/entrypoint-ran; exec \\\"$@\\\"\", \"--\"]\n")
	hostile := buildImage(t, "FROM "+seedjob.JobImage+"\nENTRYPOINT [\"echo\", \"this entrypoint ignores its command\"]\n")
	cases := []struct {
		name        string
		image       string
		entrypoint  []string
		wantOutcome runner.OutcomeKind
		wantLog     string
	}{
		{"entrypoint wraps the command", wrapping, nil, runner.OutcomeSuccess, "entrypoint said wrapped"},
		{"entrypoint [\"\"] bypasses it", hostile, []string{""}, runner.OutcomeSuccess, "entrypoint said none"},
		{"entrypoint that drops the command", hostile, nil, runner.OutcomeSystemFailure, "its image's entrypoint must run the command it is given"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			job := simpleJob("echo entrypoint said $(cat /tmp/entrypoint-ran 2>/dev/null || echo none)")
			job.Image = runner.Image{Name: tc.image, Entrypoint: tc.entrypoint}
			e := newEmulator(t, seedConfig())
			e.PrepareAttempts = 1
			res := runJob(t, e, job)
			if res.Outcome.Kind != tc.wantOutcome {
				t.Fatalf("outcome = %s, want %s", res.Outcome, tc.wantOutcome)
			}
			if !strings.Contains(runner.PlainText(res.Log), tc.wantLog) {
				t.Errorf("job log lacks %q", tc.wantLog)
			}
			assertJobLeftNothing(t, job.ID)
		})
	}
}

// A job user runs the build container; its client key is its own and
// docker over TLS works; what the helper checked out is writable to it.
func TestNonRootJobUser(t *testing.T) {
	t.Parallel()
	job := simpleJob(
		"id -u",
		"stat -c 'key %u %a' /certs/client/key.pem",
		"docker version --format 'tls ok {{.Server.Version}}'",
		"touch written-by-the-job-user && echo checkout writable",
	)
	job.Image.User = "1000"
	res := runJob(t, newEmulator(t, seedConfig()), job)
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	log := runner.PlainText(res.Log)
	for _, want := range []string{"\n1000\n", "key 1000 600", "tls ok ", "checkout writable"} {
		if !strings.Contains(log, want) {
			t.Errorf("job log lacks %q", want)
		}
	}
	assertJobLeftNothing(t, job.ID)
}

// The operator's allow-lists refuse a job's image, service, user or pull
// policy, and [limits] services too many services, as a system failure
// naming the rule, before anything is created.
func TestOperatorPolicyRefusals(t *testing.T) {
	t.Parallel()
	policy := "\n[policy]\nallowed_images = [\"dind-executor.local/job:*\"]\nallowed_services = [\"postgres:*\"]\nallowed_users = [\"1000\"]\nallowed_pull_policies = [\"if-not-present\"]\n" +
		"\n[limits]\nservices = 2\n"
	cases := []struct {
		name string
		edit func(*runner.Job)
		want string
	}{
		{"image", func(j *runner.Job) { j.Image.Name = seedjob.HelperImage }, `disallowed image "` + seedjob.HelperImage + `"`},
		{"service", func(j *runner.Job) { j.Services = append(j.Services, runner.Image{Name: "redis:7"}) }, `disallowed service "redis:7"`},
		{"user", func(j *runner.Job) { j.Image.User = "root" }, `disallowed user "root"`},
		{"pull policy", func(j *runner.Job) { j.Image.PullPolicy = []string{"always"} }, "not one of the allowed pull policies"},
		// Each service gets the sandbox's [limits] of its own: the count
		// bounds what a job can take (the dind entry is not a container).
		{"services count", func(j *runner.Job) {
			j.Services = append(j.Services, runner.Image{Name: "docker:27-dind"}, runner.Image{Name: "postgres:15", Alias: "a"},
				runner.Image{Name: "postgres:15", Alias: "b"}, runner.Image{Name: "postgres:15", Alias: "c"})
		}, "asks for 3 services and this runner allows at most 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			job := simpleJob("echo never")
			tc.edit(&job)
			e := newEmulator(t, seedConfig()+policy)
			e.PrepareAttempts = 1
			res := runJob(t, e, job)
			if res.Outcome.Kind != runner.OutcomeSystemFailure {
				t.Fatalf("outcome = %s, want system failure", res.Outcome)
			}
			if !strings.Contains(res.Log, tc.want) {
				t.Errorf("job log lacks %q", tc.want)
			}
			assertJobLeftNothing(t, job.ID)
		})
	}
}

// The runner's cache written by one job is restored in the next job of the
// same project (the cache volume belongs to the project), and another
// project does not see it.
func TestCacheRoundTripsBetweenJobsOfAProject(t *testing.T) {
	t.Parallel()
	project := newJobID()
	token := strconv.FormatInt(newJobID(), 36)
	write := simpleJob("mkdir -p cachedir && echo " + token + " > cachedir/token")
	read := simpleJob("cat cachedir/token")
	other := simpleJob("cat cachedir/token || echo no cache here")
	for _, j := range []*runner.Job{&write, &read, &other} {
		j.ProjectID = project
		j.Cache = []runner.Cache{{Key: "deps", Paths: []string{"cachedir/"}}}
	}
	other.ProjectID = project + 1
	t.Cleanup(func() {
		for _, p := range []int64{project, project + 1} {
			removeVolumes(t, executor.LabelProjectID, strconv.FormatInt(p, 10))
		}
	})
	e := newEmulator(t, seedConfig())
	for _, step := range []struct {
		job  runner.Job
		want string
	}{{write, "archived cachedir/"}, {read, token}, {other, "no cache here"}} {
		res := runJob(t, e, step.job)
		if res.Outcome.Kind != runner.OutcomeSuccess {
			t.Fatalf("job %d: outcome = %s, want success", step.job.ID, res.Outcome)
		}
		if !strings.Contains(runner.PlainText(res.Log), step.want) {
			t.Errorf("job %d log lacks %q", step.job.ID, step.want)
		}
		assertJobLeftNothing(t, step.job.ID)
	}
}

// A stage that ignores SIGTERM is killed by the hook itself before the
// runner escalates, and the sandbox still goes away.
func TestCancelKillsAStageThatIgnoresSIGTERM(t *testing.T) {
	t.Parallel()
	job := simpleJob("trap '' TERM; echo ignoring TERM; sleep 300 & wait")
	e := newEmulator(t, seedConfig())
	e.GracefulKillTimeout = 60 * time.Second
	res := runJob(t, e, job, runner.CancelDuringStage("build_script", 2*time.Second))
	build := res.Exec("build_script")
	if build == nil {
		t.Fatal("no build_script exec")
	}
	if build.Ended != runner.EndedTerminated {
		t.Fatalf("run hook ended %q after SIGTERM, want it to exit on its own (before the runner's SIGKILL)", build.Ended)
	}
	if build.TermToExit >= e.GracefulKillTimeout {
		t.Errorf("run hook took %s after SIGTERM", build.TermToExit)
	}
	t.Logf("stage ignoring TERM stopped %s after the runner's SIGTERM", build.TermToExit)
	assertJobLeftNothing(t, job.ID)
}

// A prepare that dies half way (kill -9) is retried by the runner with a
// fresh attempt: cleanup removes the half-built sandbox and the job succeeds.
func TestPrepareRetryAfterAKilledPrepare(t *testing.T) {
	t.Parallel()
	job := simpleJob("echo second attempt works")
	e := newEmulator(t, seedConfig())
	killed := false
	res := runJob(t, e, job, runner.OnExecStart(func(x runner.Exec, pid int) {
		if x.Kind == runner.ExecPrepare && x.Attempt == 1 {
			killed = true
			time.AfterFunc(700*time.Millisecond, func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
		}
	}))
	if !killed {
		t.Fatal("the first prepare was not started")
	}
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success after a retry", res.Outcome)
	}
	prepares := res.ExecsOf(runner.ExecPrepare)
	if len(prepares) != 2 || prepares[0].ExitCode == 0 {
		t.Fatalf("prepare attempts %d (first exit %d), want a killed first one and a second", len(prepares), prepares[0].ExitCode)
	}
	if !slices.Contains(res.Sequence(), "cleanup") {
		t.Error("no cleanup between the attempts")
	}
	assertJobLeftNothing(t, job.ID)
}

// Masked and file variables reach the script as the runner wrote it; the
// executor's own log never shows them and the host keeps no copy.
func TestSecretsStayInTheSandbox(t *testing.T) {
	t.Parallel()
	secret := "s3cr3t-" + strconv.FormatInt(newJobID(), 36)
	fileSecret := "file-" + secret
	// The scripts echo each command, so they name the variables only and
	// print digests of their values.
	job := simpleJob(
		`echo "masked variable arrived: $(printf %s "$MY_TOKEN" | sha256sum | cut -c1-16)"`,
		`echo "file variable arrived: $(cat "$MY_KEY_FILE" | sha256sum | cut -c1-16)"`,
	)
	job.Variables = append(job.Variables,
		runner.Variable{Key: "MY_TOKEN", Value: secret, Masked: true},
		runner.Variable{Key: "MY_KEY_FILE", Value: fileSecret, File: true},
	)
	job.Token = "glcbt-" + secret
	e := newEmulator(t, seedConfig())
	e.Env = []string{"DIND_EXECUTOR_LOG_LEVEL=debug"}
	res := runJob(t, e, job)
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	log := runner.PlainText(res.Log)
	for _, want := range []string{"masked variable arrived: " + digest16(secret), "file variable arrived: " + digest16(fileSecret)} {
		if !strings.Contains(log, want) {
			t.Errorf("job log lacks %q", want)
		}
	}
	for _, x := range res.Execs {
		if strings.Contains(x.Output, secret) {
			t.Errorf("%s %s printed a secret (unmasked output):\n%s", x.Kind, x.Stage, x.Output)
		}
	}
	for _, dir := range []string{os.TempDir(), "/var/tmp", "/var/log/dind-executor"} {
		if path := fileContaining(t, dir, secret); path != "" {
			t.Errorf("the host keeps a copy of a secret in %s", path)
		}
	}
	assertJobLeftNothing(t, job.ID)
}

func digest16(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:16]
}

// fileContaining returns a regular file under dir (two levels deep, small
// files only) whose content contains needle.
func fileContaining(t *testing.T, dir, needle string) string {
	t.Helper()
	found := ""
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || found != "" {
			return filepath.SkipDir
		}
		if d.IsDir() && strings.Count(strings.TrimPrefix(path, dir), "/") > 2 {
			return filepath.SkipDir
		}
		if info, err := d.Info(); err == nil && info.Mode().IsRegular() && info.Size() < 1<<20 {
			if data, err := os.ReadFile(path); err == nil && strings.Contains(string(data), needle) {
				found = path
			}
		}
		return nil
	})
	return found
}

// removeVolumes removes the volumes carrying a label (project caches).
func removeVolumes(t *testing.T, label, value string) {
	api := dockerAPI(t)
	ctx := context.Background()
	removeLastUseMarkers(t, api, label, value)
	vols, err := api.VolumeList(ctx, client.VolumeListOptions{Filters: client.Filters{}.Add("label", label+"="+value)})
	if err != nil {
		t.Error(err)
		return
	}
	for _, v := range vols.Items {
		if _, err := api.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil {
			t.Error(fmt.Errorf("remove cache volume %s: %w", v.Name, err))
		}
	}
}

// removeLastUseMarkers removes the marker containers that record when a
// project's cache volumes were last used.
func removeLastUseMarkers(t *testing.T, api *client.Client, label, value string) {
	markers, err := api.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: client.Filters{}.
		Add("label", label+"="+value).Add("label", executor.LabelRole+"="+string(executor.RoleLastUse))})
	if err != nil {
		t.Error(err)
		return
	}
	for _, c := range markers.Items {
		// RemoveVolumes: a marker made from the dind image has an
		// anonymous volume for the image's VOLUME /var/lib/docker.
		if _, err := api.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			t.Errorf("remove last-use marker %v: %v", c.Names, err)
		}
	}
}

// HEALTHCHECK_TCP_PORT names the one port the job waits for, as the
// runner's health check does: a service that exposes nothing but sets it
// is waited for, and one whose named port never listens is reported.
func TestServiceHealthCheckTCPPort(t *testing.T) {
	t.Parallel()
	late := "sleep 2; mkdir -p /w && echo late-service-answers > /w/index.html && exec busybox httpd -f -p 7777 -h /w"
	job := simpleJob("curl -fsS http://late:7777/", "echo the job ran")
	job.Services = []runner.Image{
		{Name: seedjob.JobImage, Alias: "late", Command: []string{"sh", "-c", late},
			Variables: []runner.Variable{{Key: "HEALTHCHECK_TCP_PORT", Value: "7777"}}},
		{Name: seedjob.JobImage, Alias: "deaf", Command: []string{"sleep", "600"},
			Variables: []runner.Variable{{Key: "HEALTHCHECK_TCP_PORT", Value: "7778"}}},
	}
	config := strings.Replace(seedConfig(), "[sandbox]\n", "[sandbox]\nwait_for_services_timeout = \"20s\"\n", 1)
	res := runJob(t, newEmulator(t, config), job)
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	log := runner.PlainText(res.Log)
	for _, want := range []string{"late-service-answers", "did not accept TCP on port(s) [7778] within 20s", "the job ran"} {
		if !strings.Contains(log, want) {
			t.Errorf("job log lacks %q", want)
		}
	}
	assertJobLeftNothing(t, job.ID)
}
