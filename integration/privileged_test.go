package integration

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/executor/audit"
	"gitlab.com/dind-executor/dind-executor/integration/runner"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

// TestPrivilegedProfileRunsTheSeedJob runs the seed job with the default
// profile, daemon_security = "privileged", end to end.
//
// The shared Engine cannot start a privileged container on this machine
// kind ("unable to apply caps: operation not permitted": no process has
// CAP_SYS_RESOURCE in its bounding set), so the job runs on a rootless
// Engine nested in an unprivileged container of it (nestedengine_test.go),
// where a user namespace gives every process a full bounding set. The
// executor stays on the host and reaches that Engine by its socket.
//
// On cgroup v1 the sandbox's dockerd, root of that user namespace, can run
// nothing until the nested Engine's container's own cgroup directories
// belong to the namespace's root (uid 1000 outside): the harness chowns
// them as host root (delegateCgroups), and Docker removes them with the
// container.
func TestPrivilegedProfileRunsTheSeedJob(t *testing.T) {
	t.Parallel()
	nested := startNestedEngine(t, env.repoDir)
	nested.loadImages(t, seedjob.DaemonImage, seedjob.JobImage, seedjob.HelperImage)
	api := nested.api(t)

	const profile = `daemon_security = "capabilities"` // seedConfig's, for this machine
	if !strings.Contains(seedConfig(), profile) {
		t.Fatalf("seedConfig() has no %s to replace:\n%s", profile, seedConfig())
	}
	toml := fmt.Sprintf("[engine]\nhost = %q\n\n", nested.host) +
		strings.Replace(seedConfig(), profile, `daemon_security = "privileged"`, 1)
	toml, _ = withAudit(t, toml)

	job := seedjob.Job(newJobID(), env.repoSHA)
	// The inner dockerd has cgroups of its own (the delegated ones): a
	// limit the job sets on its container applies.
	job.Script = append(job.Script, `docker run --rm --memory 64m my-app:$CI_COMMIT_SHA /bin/busybox sh -c `+
		`'echo "inner memory limit: $(/bin/busybox cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null)"'`)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	seen := make(chan privilegeSeen, 1)
	go func() { seen <- watchPrivileges(ctx, api, job.ID) }()

	e := newEmulator(t, toml)
	res := runJob(t, e, job)
	if res.Outcome.Kind != runner.OutcomeSuccess {
		t.Fatalf("outcome = %s, want success", res.Outcome)
	}
	log := runner.PlainText(res.Log)
	for _, want := range []string{
		"(privileged, certificates valid until",
		"Service docker:27-dind: provided by the sandbox's own daemon",
		"inner daemon ",
		"naming to docker.io/library/my-app:" + job.SHA,
		seedjob.AppGreeting + " (version 1.0.0)",
		"inner memory limit: 67108864",
		"after_script ran",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("job log lacks %q", want)
		}
	}

	// What the nested Engine reported while the job ran.
	cancel()
	s := <-seen
	if s.err != nil {
		t.Errorf("reading the sandbox's containers on the nested Engine: %v", s.err)
	}
	for _, c := range []struct {
		role       executor.Role
		privileged bool
	}{{executor.RoleDaemon, true}, {executor.RoleBuild, false}, {executor.RoleHelper, false}} {
		got, ok := s.privileged[c.role]
		if !ok {
			t.Errorf("the %s container was not seen on the nested Engine", c.role)
		} else if got != c.privileged {
			t.Errorf("the %s container is privileged=%t on the nested Engine, want %t", c.role, got, c.privileged)
		}
	}

	// What the executor recorded, read back from the Engine.
	created := recordOf(t, auditJSON(t, e.Args[1], "--job", strconv.FormatInt(job.ID, 10)), audit.EventSandboxCreated)
	if created.Error != "" {
		t.Errorf("sandbox.created record error: %s", created.Error)
	}
	c := created.Created
	if c.DaemonSecurity != "privileged" {
		t.Errorf("audit daemon_security %q, want privileged", c.DaemonSecurity)
	}
	if c.Engine != nested.host {
		t.Errorf("audit engine %q, want the nested Engine %q", c.Engine, nested.host)
	}
	roles := map[string]bool{}
	for _, ct := range c.Containers {
		roles[ct.Role] = true
		if want := ct.Role == string(executor.RoleDaemon); ct.Privileged != want {
			t.Errorf("audit: the %s container is privileged=%t, want %t", ct.Role, ct.Privileged, want)
		}
		if ct.Role != string(executor.RoleDaemon) && (len(ct.CapAdd) > 0 || len(ct.Devices) > 0 || ct.UnmaskedPaths) {
			t.Errorf("audit: the %s container has added rights: %+v", ct.Role, ct)
		}
	}
	if !roles[string(executor.RoleDaemon)] || !roles[string(executor.RoleBuild)] {
		t.Errorf("audit records containers %v, want the daemon and build ones", roles)
	}

	if left := objectsLabelled(t, api, executor.LabelJobID, strconv.FormatInt(job.ID, 10)); len(left) > 0 {
		t.Errorf("left on the nested Engine: %v", left)
	}
	assertJobLeftNothing(t, job.ID)
}

// privilegeSeen is whether each container of a job's sandbox was
// privileged, as the Engine reported it.
type privilegeSeen struct {
	privileged map[executor.Role]bool
	err        error
}

// watchPrivileges inspects the daemon, build and helper containers of
// job as they appear on api, until it has all three or ctx ends. It never
// stops the test, so it can run in a goroutine.
func watchPrivileges(ctx context.Context, api *client.Client, jobID int64) privilegeSeen {
	s := privilegeSeen{privileged: map[executor.Role]bool{}}
	f := client.Filters{}.Add("label", executor.LabelJobID+"="+strconv.FormatInt(jobID, 10))
	for len(s.privileged) < 3 {
		list, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if ctx.Err() != nil {
			return s
		}
		if err != nil {
			s.err = fmt.Errorf("list the job's containers: %w", err)
			return s
		}
		for _, c := range list.Items {
			role := executor.Role(c.Labels[executor.LabelRole])
			if _, done := s.privileged[role]; done || (role != executor.RoleDaemon && role != executor.RoleBuild && role != executor.RoleHelper) {
				continue
			}
			inspected, err := api.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
			if err != nil {
				continue // removed meanwhile: seen again or never
			}
			s.privileged[role] = inspected.Container.HostConfig.Privileged
		}
		select {
		case <-ctx.Done():
			return s
		case <-time.After(200 * time.Millisecond):
		}
	}
	return s
}
