package runner

import (
	"os"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// variables is an ordered variable list with the runner's lookup rules:
// the last entry for a key wins.
type variables []Variable

// lookup returns a variable's value for expansion. File variables expand to
// their path under tmpDir, like the runner's Variables.Get.
func (vs variables) lookup(key, tmpDir string) string {
	switch key {
	case "$":
		return key
	case "*", "#", "@", "!", "?", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9":
		return ""
	}
	for _, v := range slices.Backward(vs) {
		if v.Key == key {
			if v.File {
				return path.Join(tmpDir, v.Key)
			}
			return v.Value
		}
	}
	return ""
}

// Value returns the raw value of the last variable named key.
func (vs variables) Value(key string) string {
	for _, v := range slices.Backward(vs) {
		if v.Key == key {
			return v.Value
		}
	}
	return ""
}

// expand resolves $VAR references in every non-raw value, in one pass,
// against the list itself (spec.Variables.Expand).
func (vs variables) expand(tmpDir string) variables {
	out := make(variables, 0, len(vs))
	for _, v := range vs {
		if !v.Raw {
			v.Value = os.Expand(v.Value, func(k string) string { return vs.lookup(k, tmpDir) })
		}
		out = append(out, v)
	}
	return out
}

// expandValue expands one string against the list.
func (vs variables) expandValue(s, tmpDir string) string {
	return os.Expand(s, func(k string) string { return vs.lookup(k, tmpDir) })
}

// slug is GitLab's CI_*_SLUG form: lower case, [a-z0-9] kept, the rest '-',
// at most 63 bytes, no leading or trailing '-'.
func slug(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			b[i] = '-'
		}
	}
	if len(b) > 63 {
		b = b[:63]
	}
	return strings.Trim(string(b), "-")
}

// gitlabVariables are the variables GitLab itself sends with the job: the
// predefined CI_* ones, GIT_STRATEGY, then the job's own. They are what the
// job payload (JOB_RESPONSE_FILE) carries.
func gitlabVariables(job Job, serverURL string) variables {
	pub := func(k, v string) Variable { return Variable{Key: k, Value: v, Public: true} }
	ns, name := path.Split(job.ProjectPath)
	shortSHA := job.SHA
	if len(shortSHA) > 8 {
		shortSHA = shortSHA[:8]
	}
	vs := variables{
		pub("CI", "true"),
		pub("GITLAB_CI", "true"),
		pub("CI_SERVER_NAME", "GitLab"),
	}
	if serverURL != "" {
		vs = append(vs, pub("CI_SERVER_URL", serverURL))
	}
	vs = append(vs,
		pub("CI_PROJECT_ID", strconv.FormatInt(job.ProjectID, 10)),
		pub("CI_PROJECT_NAME", name),
		pub("CI_PROJECT_NAMESPACE", strings.TrimSuffix(ns, "/")),
		pub("CI_PROJECT_PATH", job.ProjectPath),
		pub("CI_PROJECT_PATH_SLUG", slug(job.ProjectPath)),
		pub("CI_PIPELINE_ID", strconv.FormatInt(job.PipelineID, 10)),
		pub("CI_JOB_ID", strconv.FormatInt(job.ID, 10)),
		pub("CI_JOB_NAME", job.Name),
		pub("CI_JOB_STAGE", job.Stage),
		Variable{Key: "CI_JOB_TOKEN", Value: job.Token, Masked: job.Token != ""},
		pub("CI_REPOSITORY_URL", job.RepoURL),
		pub("CI_COMMIT_SHA", job.SHA),
		pub("CI_COMMIT_SHORT_SHA", shortSHA),
		pub("CI_COMMIT_BEFORE_SHA", job.BeforeSHA),
		pub("CI_COMMIT_REF_NAME", job.Ref),
		pub("CI_COMMIT_REF_SLUG", slug(job.Ref)),
	)
	if job.RefType == "tag" {
		vs = append(vs, pub("CI_COMMIT_TAG", job.Ref))
	} else {
		vs = append(vs, pub("CI_COMMIT_BRANCH", job.Ref))
	}
	if job.GitStrategy != "" {
		vs = append(vs, pub("GIT_STRATEGY", job.GitStrategy))
	}
	return append(vs, job.Variables...)
}

// buildState is what the runner knows about the job at a given moment.
type buildState struct {
	buildsDir  string // CI_BUILDS_DIR; "" before config_exec
	projectDir string // CI_PROJECT_DIR; "" before config_exec
	status     string // CI_JOB_STATUS
}

// tmpProjectDir is RUNNER_TEMP_PROJECT_DIR, <PD>.tmp (".tmp" before config).
func (s buildState) tmpProjectDir() string { return s.projectDir + ".tmp" }

// allVariables is Build.GetAllVariables: every variable the runner exports to
// the job (as CUSTOM_ENV_* and in the scripts), in the runner's order and
// expanded.
func (e *Emulator) allVariables(job Job, st buildState, imageName string) variables {
	jobVars := gitlabVariables(job, e.RunnerURL)
	internal := func(k, v string) Variable { return Variable{Key: k, Value: v, Public: true} }

	var vs variables
	isFF := map[string]bool{}
	for _, ff := range featureFlags {
		isFF[ff.name] = true
		on := ff.def
		if ff.name == "FF_USE_LEGACY_BASH_EVAL" && e.ScriptStyle == StyleRunner15 {
			on = true // the reference script shape is the legacy eval form
		}
		if b, err := strconv.ParseBool(jobVars.Value(ff.name)); err == nil {
			on = b
		}
		if b, ok := e.FeatureFlags[ff.name]; ok {
			on = b
		}
		vs = append(vs, internal(ff.name, strconv.FormatBool(on)))
	}
	if imageName != "" {
		vs = append(vs, internal("CI_JOB_IMAGE", imageName))
	}
	vs = append(vs, internal("CI_RUNNER_SHORT_TOKEN", e.ShortToken))
	for _, kv := range e.Environment {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vs = append(vs, Variable{Key: k, Value: v})
		}
	}
	vs = append(vs,
		internal("CI_BUILDS_DIR", st.buildsDir),
		internal("CI_PROJECT_DIR", st.projectDir),
		internal("CI_CONCURRENT_ID", strconv.Itoa(e.ConcurrentID)),
		internal("CI_CONCURRENT_PROJECT_ID", strconv.Itoa(e.ConcurrentProjectID)),
		internal("CI_SERVER", "yes"),
		internal("CI_JOB_STATUS", st.status),
		internal("CI_JOB_TIMEOUT", strconv.Itoa(job.Timeout)),
	)
	for _, v := range jobVars {
		if !isFF[v.Key] {
			vs = append(vs, v)
		}
	}
	vs = append(vs,
		internal("CI_SHARED_ENVIRONMENT", "true"),
		internal("CI_RUNNER_VERSION", e.runnerVersion()),
		internal("CI_RUNNER_REVISION", e.runnerRevision()),
		internal("CI_RUNNER_EXECUTABLE_ARCH", runtime.GOOS+"/"+runtime.GOARCH),
		internal("RUNNER_TEMP_PROJECT_DIR", st.tmpProjectDir()),
	)
	return vs.expand(st.tmpProjectDir())
}
