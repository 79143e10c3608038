package runner

import (
	"encoding/json"
	"testing"
)

func TestJobResponseShape(t *testing.T) {
	e := &Emulator{}
	job := referenceJob()
	job.ProjectPath, job.ProjectID, job.PipelineID, job.Token = "grp/app", 42, 900, "glcbt-xyz"
	job.Image.PullPolicy, job.Image.User = []string{"if-not-present"}, "1000"
	job.Credentials = []Credential{{URL: "registry.example.com", Username: "u", Password: "p"}}
	job.Steps = []Step{{Name: "release", Script: []string{"echo release"}}}
	data, err := json.Marshal(e.jobResponse(job.withDefaults()))
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	get := func(path ...any) any {
		var cur any = r
		for _, p := range path {
			switch k := p.(type) {
			case string:
				cur = cur.(map[string]any)[k]
			case int:
				cur = cur.([]any)[k]
			}
		}
		return cur
	}
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	for _, c := range []struct {
		path []any
		want string
	}{
		{[]any{"id"}, `1`},
		{[]any{"token"}, `"glcbt-xyz"`},
		{[]any{"allow_git_fetch"}, `false`}, // clone
		{[]any{"job_info", "project_id"}, `42`},
		{[]any{"job_info", "pipeline_id"}, `900`},
		{[]any{"job_info", "project_full_path"}, `"grp/app"`},
		{[]any{"job_info", "project_name"}, `"app"`},
		{[]any{"git_info", "repo_url"}, `"/srv/git/project"`},
		{[]any{"git_info", "sha"}, `"2912ef9ede309acd88a37b8306a91494ce1452fc"`},
		{[]any{"git_info", "ref_type"}, `"branch"`},
		{[]any{"runner_info", "timeout"}, `1800`},
		{[]any{"steps", 0}, `{"allow_failure":false,"name":"script","script":["echo before","mkdir -p cachedir out \u0026\u0026 echo built \u003e out/app.txt","echo \"job var=$JOB_VAR global=$GLOBAL_VAR\""],"timeout":1800,"when":"on_success"}`},
		{[]any{"steps", 1, "name"}, `"release"`},
		{[]any{"steps", 2}, `{"allow_failure":false,"name":"after_script","script":["echo after"],"timeout":1800,"when":"always"}`},
		{[]any{"image"}, `{"entrypoint":[""],"executor_opts":{"docker":{"platform":"","user":"1000"},"kubernetes":{"user":""}},"name":"docker:26-cli","pull_policy":["if-not-present"]}`},
		{[]any{"services"}, `[{"alias":"docker","command":["--mtu=1400"],"executor_opts":{"docker":{"platform":"","user":""},"kubernetes":{"user":""}},"name":"docker:26-dind"}]`},
		{[]any{"cache"}, `[{"fallback_keys":null,"key":"deps","paths":["cachedir/"],"policy":"","untracked":false,"when":""}]`},
		{[]any{"artifacts"}, `[{"artifact_format":"","artifact_type":"","exclude":null,"expire_in":"","name":"","paths":["out/"],"untracked":false,"when":"on_success"}]`},
		{[]any{"credentials"}, `[{"password":"p","type":"registry","url":"registry.example.com","username":"u"}]`},
		{[]any{"inputs"}, `{}`},
		{[]any{"features", "trace_sections"}, `true`},
	} {
		if got := js(get(c.path...)); got != c.want {
			t.Errorf("%v = %s, want %s", c.path, got, c.want)
		}
	}

	vars := map[string]map[string]any{}
	for _, v := range get("variables").([]any) {
		m := v.(map[string]any)
		vars[m["key"].(string)] = m
	}
	for key, want := range map[string]string{
		"CI_JOB_TOKEN":    `{"file":false,"key":"CI_JOB_TOKEN","masked":true,"public":false,"raw":false,"value":"glcbt-xyz"}`,
		"JOB_VAR":         `{"file":false,"key":"JOB_VAR","masked":false,"public":true,"raw":false,"value":"with 'quotes' and $dollar"}`,
		"CI_PROJECT_PATH": `{"file":false,"key":"CI_PROJECT_PATH","masked":false,"public":true,"raw":false,"value":"grp/app"}`,
		"CI_PIPELINE_ID":  `{"file":false,"key":"CI_PIPELINE_ID","masked":false,"public":true,"raw":false,"value":"900"}`,
		"GIT_STRATEGY":    `{"file":false,"key":"GIT_STRATEGY","masked":false,"public":true,"raw":false,"value":"clone"}`,
	} {
		if got := js(vars[key]); got != want {
			t.Errorf("variable %s = %s, want %s", key, got, want)
		}
	}
	for _, runnerOnly := range []string{"CI_PROJECT_DIR", "CI_BUILDS_DIR", "FF_NETWORK_PER_BUILD", "CI_RUNNER_VERSION"} {
		if _, ok := vars[runnerOnly]; ok {
			t.Errorf("runner-computed variable %s must not be in the job payload", runnerOnly)
		}
	}
}
