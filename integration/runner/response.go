package runner

import (
	"encoding/json"
	"os"
	"path"
)

// The job payload as the runner re-encodes it into JOB_RESPONSE_FILE
// (common/spec/spec.go Job, runner 19.4). Only the shape matters here; field
// order and omitempty follow the runner's struct tags.
type (
	respJob struct {
		ID             int64            `json:"id"`
		Token          string           `json:"token"`
		AllowGitFetch  bool             `json:"allow_git_fetch"`
		JobInfo        respJobInfo      `json:"job_info"`
		GitInfo        respGitInfo      `json:"git_info"`
		RunnerInfo     respRunnerInfo   `json:"runner_info"`
		Inputs         struct{}         `json:"inputs"`
		Variables      []respVariable   `json:"variables"`
		Steps          []respStep       `json:"steps"`
		Image          respImage        `json:"image"`
		Services       []respImage      `json:"services"`
		Artifacts      []respArtifact   `json:"artifacts"`
		Cache          []respCache      `json:"cache"`
		Credentials    []respCredential `json:"credentials"`
		Dependencies   []respDependency `json:"dependencies"`
		Features       respFeatures     `json:"features"`
		PolicyOptions  respPolicy       `json:"policy_options"`
		SuspendOptions struct{}         `json:"suspend_options"`
	}
	respJobInfo struct {
		Name            string `json:"name"`
		Stage           string `json:"stage"`
		PipelineID      int64  `json:"pipeline_id"`
		ProjectID       int64  `json:"project_id"`
		ProjectName     string `json:"project_name"`
		ProjectFullPath string `json:"project_full_path"`
		NamespaceID     int64  `json:"namespace_id"`
		RootNamespaceID int64  `json:"root_namespace_id"`
		OrganizationID  int64  `json:"organization_id"`
		UserID          int64  `json:"user_id"`
	}
	respGitInfo struct {
		RepoURL          string   `json:"repo_url"`
		RepoObjectFormat string   `json:"repo_object_format"`
		Ref              string   `json:"ref"`
		Sha              string   `json:"sha"`
		BeforeSha        string   `json:"before_sha"`
		RefType          string   `json:"ref_type"`
		Refspecs         []string `json:"refspecs"`
		Depth            int      `json:"depth"`
		Protected        *bool    `json:"protected"`
	}
	respRunnerInfo struct {
		UUID    string `json:"uuid"`
		Timeout int    `json:"timeout"`
	}
	respVariable struct {
		Key    string `json:"key"`
		Value  string `json:"value"`
		Public bool   `json:"public"`
		File   bool   `json:"file"`
		Masked bool   `json:"masked"`
		Raw    bool   `json:"raw"`
	}
	respStep struct {
		Name         string   `json:"name"`
		Script       []string `json:"script"`
		Timeout      int      `json:"timeout"`
		When         string   `json:"when"`
		AllowFailure bool     `json:"allow_failure"`
	}
	respImage struct {
		Name         string         `json:"name"`
		Alias        string         `json:"alias,omitempty"`
		Command      []string       `json:"command,omitempty"`
		Entrypoint   []string       `json:"entrypoint,omitempty"`
		Variables    []respVariable `json:"variables,omitempty"`
		PullPolicies []string       `json:"pull_policy,omitempty"`
		ExecutorOpts respExecOpts   `json:"executor_opts"`
	}
	respExecOpts struct {
		Docker struct {
			Platform string `json:"platform"`
			User     string `json:"user"`
		} `json:"docker"`
		Kubernetes struct {
			User string `json:"user"`
		} `json:"kubernetes"`
	}
	respArtifact struct {
		Name      string   `json:"name"`
		Untracked bool     `json:"untracked"`
		Paths     []string `json:"paths"`
		Exclude   []string `json:"exclude"`
		When      string   `json:"when"`
		Type      string   `json:"artifact_type"`
		Format    string   `json:"artifact_format"`
		ExpireIn  string   `json:"expire_in"`
	}
	respCache struct {
		Key          string   `json:"key"`
		Untracked    bool     `json:"untracked"`
		Policy       string   `json:"policy"`
		Paths        []string `json:"paths"`
		When         string   `json:"when"`
		FallbackKeys []string `json:"fallback_keys"`
	}
	respCredential struct {
		Type     string `json:"type"`
		URL      string `json:"url"`
		Username string `json:"username"`
		Password string `json:"password"`
	}
	respDependency struct {
		ID            int64  `json:"id"`
		Token         string `json:"token"`
		Name          string `json:"name"`
		ArtifactsFile struct {
			Filename string `json:"filename"`
			Size     int64  `json:"size"`
		} `json:"artifacts_file"`
	}
	respFeatures struct {
		TraceSections     bool     `json:"trace_sections"`
		TokenMaskPrefixes []string `json:"token_mask_prefixes"`
		FailureReasons    []string `json:"failure_reasons"`
		Tracing           any      `json:"tracing"`
	}
	respPolicy struct {
		PolicyJob bool   `json:"execution_policy_job"`
		Name      string `json:"policy_name"`
	}
)

func respVariables(vs []Variable) []respVariable {
	if vs == nil {
		return nil
	}
	out := make([]respVariable, 0, len(vs))
	for _, v := range vs {
		out = append(out, respVariable(v))
	}
	return out
}

func respImageOf(img Image, vars variables) respImage {
	r := respImage{
		Name:         vars.expandValue(img.Name, ""),
		Alias:        vars.expandValue(img.Alias, ""),
		Command:      img.Command,
		Entrypoint:   img.Entrypoint,
		Variables:    respVariables(img.Variables),
		PullPolicies: img.PullPolicy,
	}
	r.ExecutorOpts.Docker.Platform = img.Platform
	r.ExecutorOpts.Docker.User = img.User
	return r
}

// jobSteps are the steps GitLab sends: "script" (before_script + script),
// the extra steps, then "after_script" when there is one.
func jobSteps(job Job) []respStep {
	step := func(name string, script []string, when string) respStep {
		return respStep{Name: name, Script: script, Timeout: job.Timeout, When: when}
	}
	steps := []respStep{step("script", append(append([]string{}, job.BeforeScript...), job.Script...), "on_success")}
	for _, s := range job.Steps {
		steps = append(steps, step(s.Name, s.Script, "on_success"))
	}
	if len(job.AfterScript) > 0 {
		steps = append(steps, step("after_script", job.AfterScript, "always"))
	}
	return steps
}

// jobResponse builds the payload for JOB_RESPONSE_FILE.
func (e *Emulator) jobResponse(job Job) respJob {
	vars := gitlabVariables(job, e.RunnerURL)
	r := respJob{
		ID:            job.ID,
		Token:         job.Token,
		AllowGitFetch: job.GitStrategy != "clone",
		JobInfo: respJobInfo{
			Name: job.Name, Stage: job.Stage,
			PipelineID: job.PipelineID, ProjectID: job.ProjectID,
			ProjectName: path.Base(job.ProjectPath), ProjectFullPath: job.ProjectPath,
		},
		GitInfo: respGitInfo{
			RepoURL: job.RepoURL, Ref: job.Ref, Sha: job.SHA, BeforeSha: job.BeforeSHA,
			RefType: job.RefType, Refspecs: job.Refspecs, Depth: job.Depth,
		},
		RunnerInfo: respRunnerInfo{Timeout: job.Timeout},
		Variables:  respVariables(vars),
		Steps:      jobSteps(job),
		Image:      respImageOf(job.Image, vars),
		Services:   []respImage{},
		Features: respFeatures{
			TraceSections:     true,
			TokenMaskPrefixes: job.TokenMaskPrefixes,
			FailureReasons:    []string{"script_failure", "runner_system_failure", "job_execution_timeout"},
		},
	}
	for _, s := range job.Services {
		r.Services = append(r.Services, respImageOf(s, vars))
	}
	for _, a := range job.Artifacts {
		when := a.When
		if when == "" {
			when = "on_success"
		}
		r.Artifacts = append(r.Artifacts, respArtifact{
			Name: a.Name, Untracked: a.Untracked, Paths: a.Paths, Exclude: a.Exclude,
			When: when, Type: a.Type, Format: a.Format, ExpireIn: a.ExpireIn,
		})
	}
	for _, c := range job.Cache {
		r.Cache = append(r.Cache, respCache{
			Key: c.Key, Untracked: c.Untracked, Policy: c.Policy, Paths: c.Paths,
			When: c.When, FallbackKeys: c.FallbackKeys,
		})
	}
	for _, c := range job.Credentials {
		typ := c.Type
		if typ == "" {
			typ = "registry"
		}
		r.Credentials = append(r.Credentials, respCredential{Type: typ, URL: c.URL, Username: c.Username, Password: c.Password})
	}
	for _, d := range job.Dependencies {
		rd := respDependency{ID: d.ID, Token: d.Token, Name: d.Name}
		rd.ArtifactsFile.Filename = d.ArtifactsFilename
		rd.ArtifactsFile.Size = d.ArtifactsSize
		r.Dependencies = append(r.Dependencies, rd)
	}
	return r
}

// writeJobResponse writes <tmp>/response.json with mode 0600.
func (e *Emulator) writeJobResponse(file string, job Job) error {
	data, err := json.Marshal(e.jobResponse(job))
	if err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o600)
}
