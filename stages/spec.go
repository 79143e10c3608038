package stages

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"gitlab.com/dind-executor/dind-executor/config"
	"gitlab.com/dind-executor/dind-executor/executor"
)

// certMargin keeps the job's certificates valid a while past its timeout,
// for after_script, artifact upload and cleanup.
const certMargin = time.Hour

// Spec turns the operator's config and the job into the executor's request,
// applying the operator's policy: a refused image, service, user, pull
// policy or dockerd flag is an error that names the rule.
func (h *Hooks) Spec(id executor.Identity, job *JobResponse) (executor.Spec, error) {
	spec, _, err := h.spec(id, job)
	return spec, err
}

// spec is Spec with the lines for the job log that say what became of the
// job's request to its daemon (its image, flags and variables).
func (h *Hooks) spec(id executor.Identity, job *JobResponse) (executor.Spec, []string, error) {
	c := h.Config
	buildName := job.Image.Name
	if buildName == "" {
		buildName = c.Sandbox.DefaultImage
	} else if err := c.Policy.CheckImage(buildName); err != nil {
		return executor.Spec{}, nil, err
	}
	user := job.Image.ExecutorOpts.Docker.User
	if err := c.Policy.CheckUser(user); err != nil {
		return executor.Spec{}, nil, err
	}
	helperName := c.Sandbox.HelperImage
	if helperName == "" {
		helperName = DefaultHelperImage(h.Env.RunnerVersion, h.Env.RunnerRevision, h.Env.RunnerArch)
	}
	operatorImages := map[string]string{c.Sandbox.DindImage: "dind_image", helperName: "helper_image", c.Sandbox.DefaultImage: "default_image"}
	if err := checkPlatform(buildName, job.Image.ExecutorOpts.Docker.Platform, operatorImages); err != nil {
		return executor.Spec{}, nil, fmt.Errorf("job image: %w", err)
	}
	build, err := h.imageRef(buildName, job.Image.PullPolicy, job.Image.ExecutorOpts.Docker.Platform, job)
	if err != nil {
		return executor.Spec{}, nil, fmt.Errorf("job image: %w", err)
	}
	helper, err := h.imageRef(helperName, nil, "", job)
	if err != nil {
		return executor.Spec{}, nil, fmt.Errorf("helper image: %w", err)
	}
	if err := checkServices(job.Services, c.Sandbox.DaemonSecurity == config.DaemonSecurityRootless, c.Limits.Services); err != nil {
		return executor.Spec{}, nil, err
	}
	services, err := h.services(job, operatorImages)
	if err != nil {
		return executor.Spec{}, nil, err
	}
	dockerHost, plainTCP := plainTCPRequest(job)
	plain := plainNotAsked
	switch {
	case plainTCP:
		if err := checkPlainTCP(c.Sandbox.PlainTCP, dockerHost); err != nil {
			return executor.Spec{}, nil, err
		}
		plain = plainServed
	case c.Sandbox.PlainTCP == config.PlainTCPRefuse:
		plain = plainRefused
	}
	// The daemon is the operator's, made exactly as the pool makes them
	// (so a job can take a pooled one), unless the job's dind service asks
	// something of it; the job's login is added.
	ask, err := askOfDaemon(job, plain)
	if err != nil {
		return executor.Spec{}, nil, err
	}
	pinned, imageNote, err := h.daemonImage(job, operatorImages)
	if err != nil {
		return executor.Spec{}, nil, err
	}
	ask.request.Image = pinned
	daemonImage := c.Sandbox.DindImage
	if pinned != nil {
		daemonImage = pinned.Name
	}
	daemonAuth, err := registryAuth(daemonImage, job)
	if err != nil {
		return executor.Spec{}, nil, fmt.Errorf("dind image: %w", err)
	}

	return executor.Spec{
		Identity:        id,
		BuildImage:      build,
		HelperImage:     helper,
		Services:        services,
		DaemonAuth:      daemonAuth,
		DaemonAliases:   daemonAliases(job.Services),
		DaemonRequest:   ask.request,
		PlainTCP:        plainTCP,
		BuildEntrypoint: job.Image.Entrypoint,
		BuildUser:       user,
		CertLifetime:    time.Duration(job.TimeoutSeconds())*time.Second + certMargin,
		RunnerVersion:   h.Env.RunnerVersion,
		Log:             h.Stdout,
	}, append([]string{imageNote}, ask.notes...), nil
}

// imageRef resolves how to get one image: the pull policies (the job's
// narrowed by the operator's) and the registry login.
func (h *Hooks) imageRef(name string, jobPolicies []string, platform string, job *JobResponse) (executor.ImageRef, error) {
	policies, err := h.Config.PullPolicies(jobPolicies)
	if err != nil {
		return executor.ImageRef{}, fmt.Errorf("image %s: %w", name, err)
	}
	auth, err := registryAuth(name, job)
	if err != nil {
		return executor.ImageRef{}, err
	}
	ref := executor.ImageRef{Name: name, Platform: platform, Auth: auth}
	for _, p := range policies {
		ref.Pull = append(ref.Pull, executor.PullPolicy(p))
	}
	return ref, nil
}

// services are the job's services the sandbox starts: docker:*dind*
// entries are served by the sandbox's own daemon instead.
func (h *Hooks) services(job *JobResponse, operatorImages map[string]string) ([]executor.Service, error) {
	var out []executor.Service
	for _, s := range job.Services {
		if IsDinDService(s.Name) {
			continue
		}
		if err := h.Config.Policy.CheckService(s.Name); err != nil {
			return nil, err
		}
		if err := checkPlatform(s.Name, s.ExecutorOpts.Docker.Platform, operatorImages); err != nil {
			return nil, fmt.Errorf("service %s: %w", s.Name, err)
		}
		ref, err := h.imageRef(s.Name, s.PullPolicy, s.ExecutorOpts.Docker.Platform, job)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", s.Name, err)
		}
		out = append(out, executor.Service{
			Image:      ref,
			Aliases:    ServiceAliases(s.Name, s.Alias),
			Entrypoint: s.Entrypoint,
			Command:    s.Command,
			Env:        serviceEnv(job.Variables, s.Variables),
		})
	}
	return out, nil
}

// serviceEnv is what the docker executor gives a service: the job's public
// variables, then the service's own (which win).
func serviceEnv(jobVars, serviceVars []JobVariable) []string {
	var env []string
	for _, v := range jobVars {
		if v.Public && !v.File {
			env = append(env, v.Key+"="+v.Value)
		}
	}
	for _, v := range serviceVars {
		env = append(env, v.Key+"="+v.Value)
	}
	return env
}

// projectKey names the project's cache volumes from the GitLab instance
// (the repository host, from the job response, not from job variables)
// and the project id, so equal ids of two instances never share a cache.
// Jobs of protected refs get volumes of their own ("-protected", as GitLab
// splits cache keys), so a job of an unprotected branch can never leave
// files or layers for a protected one.
func projectKey(job *JobResponse) string {
	host := ""
	if u, err := url.Parse(job.GitInfo.RepoURL); err == nil {
		host = u.Hostname()
	}
	sum := sha256.Sum256([]byte(host + "\x00" + strconv.FormatInt(job.JobInfo.ProjectID, 10)))
	key := hex.EncodeToString(sum[:8])
	if job.refProtected() {
		key += "-protected"
	}
	return key
}

// refProtected is GitLab's CI_COMMIT_REF_PROTECTED. A pipeline can define
// a variable of that name too; GitLab sends both, so the ref counts as
// protected only when every value says so: an unprotected job cannot
// claim the protected cache by adding "true", and a protected job that
// adds "false" only loses its own cache.
func (j *JobResponse) refProtected() bool {
	seen := false
	for _, v := range j.Variables {
		if v.Key != "CI_COMMIT_REF_PROTECTED" {
			continue
		}
		if v.Value != "true" {
			return false
		}
		seen = true
	}
	return seen
}

// userLogin is GitLab's GITLAB_USER_LOGIN, for the trail and labels. A
// pipeline can define a variable of that name too: GitLab sends the
// .gitlab-ci.yml ones before the user's, and the runner (like the shell)
// takes the last, so the last is the login; when the job's variables also
// gave others, the record says so rather than show one of them alone.
func (j *JobResponse) userLogin() string {
	var values []string
	for _, v := range j.Variables {
		if v.Key == "GITLAB_USER_LOGIN" {
			values = append(values, strings.ToValidUTF8(v.Value[:min(len(v.Value), maxLoginBytes)], ""))
		}
	}
	if len(values) == 0 {
		return ""
	}
	login := values[len(values)-1]
	var others []string
	for _, v := range values {
		if v != login && !slices.Contains(others, v) && len(others) < maxOtherLogins {
			others = append(others, v)
		}
	}
	if len(others) > 0 {
		login += " (ambiguous: the job's variables also set GITLAB_USER_LOGIN to " + strings.Join(others, ", ") + ")"
	}
	return login
}

// maxOtherLogins and maxLoginBytes bound what of the job's variables the
// login records (GitLab's own logins are at most 255 bytes).
const (
	maxOtherLogins = 3
	maxLoginBytes  = 255
)

// checkPlatform refuses a job's platform for an image the executor itself
// runs (operatorImages: reference -> config key): pulling the operator's
// tag for another platform would change what other jobs' daemons, helpers
// or default builds run. Names are compared as the Engine resolves them
// (docker:27-cli is docker.io/library/docker:27-cli).
func checkPlatform(image, platform string, operatorImages map[string]string) error {
	if platform == "" {
		return nil
	}
	for ref, key := range operatorImages {
		if sameImage(image, ref) {
			return fmt.Errorf("image %s with platform %s: it is also the executor's %s, and pulling it for another platform would change what other jobs run; "+
				"use another tag (or a digest) for this job, or drop docker: platform:", image, platform, key)
		}
	}
	return nil
}

func sameImage(a, b string) bool {
	na, errA := reference.ParseNormalizedNamed(a)
	nb, errB := reference.ParseNormalizedNamed(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return reference.TagNameOnly(na).String() == reference.TagNameOnly(nb).String()
}
