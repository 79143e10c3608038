package runner

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"

	"gitlab.com/gitlab-org/gitlab-runner/executors/custom/api"
)

// Exit codes the runner announces to the driver (command/command.go).
const (
	BuildFailureExitCode  = 1
	SystemFailureExitCode = 2
)

// File names inside the runner's per-job temp dir.
const (
	JobResponseFileName   = "response.json"
	BuildExitCodeFileName = "build_exit_code"
)

// execEnv builds the environment of one exec in the order GitLab Runner
// builds it (executors/custom/command/command.go): the runner's own
// environment, the protocol variables, job_env from config_exec
// (unprefixed), then CUSTOM_ENV_<KEY> for every job variable and
// CUSTOM_ENV_CI_JOB_SERVICES last. Go's os/exec keeps the last value of a
// duplicated key, so a job_env TMPDIR overrides the runner's.
func execEnv(base []string, tmpDir string, jobEnv map[string]string, vars variables, services string) []string {
	env := slices.Clone(base)
	env = append(env,
		"TMPDIR="+tmpDir,
		api.BuildFailureExitCodeVariable+"=1",
		api.SystemFailureExitCodeVariable+"=2",
		api.BuildCodeFileVariable+"="+filepath.Join(tmpDir, BuildExitCodeFileName),
		api.JobResponseFileVariable+"="+filepath.Join(tmpDir, JobResponseFileName),
	)
	// The runner ranges over a map here; sorted keys keep runs comparable.
	keys := make([]string, 0, len(jobEnv))
	for k := range jobEnv {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, k+"="+jobEnv[k])
	}
	for _, v := range vars {
		env = append(env, "CUSTOM_ENV_"+v.Key+"="+v.Value)
	}
	return append(env, "CUSTOM_ENV_CI_JOB_SERVICES="+services)
}

type jsonService struct {
	Name       string            `json:"name"`
	Alias      string            `json:"alias"`
	Entrypoint []string          `json:"entrypoint"`
	Command    []string          `json:"command"`
	Variables  map[string]string `json:"variables,omitempty"`
}

// ciJobServices is the value of CUSTOM_ENV_CI_JOB_SERVICES: "" without
// services, else a JSON array with the first alias of each service and its
// own variables expanded against all job variables (file values raw).
func ciJobServices(services []Image, vars variables, tmpDir string) string {
	if len(services) == 0 {
		return ""
	}
	list := make([]jsonService, 0, len(services))
	for _, s := range services {
		js := jsonService{
			Name:       vars.expandValue(s.Name, tmpDir),
			Alias:      append(strings.Fields(strings.ReplaceAll(vars.expandValue(s.Alias, tmpDir), ",", " ")), "")[0],
			Entrypoint: s.Entrypoint,
			Command:    s.Command,
		}
		if len(s.Variables) > 0 {
			all := append(slices.Clone(vars), s.Variables...).expand(tmpDir)
			js.Variables = make(map[string]string, len(s.Variables))
			for _, v := range s.Variables {
				js.Variables[v.Key] = all.Value(v.Key)
			}
		}
		list = append(list, js)
	}
	data, _ := json.Marshal(list) // strings and maps only: cannot fail
	return string(data)
}
