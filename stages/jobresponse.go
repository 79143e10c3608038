package stages

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"gitlab.com/dind-executor/dind-executor/executor"
)

// JobResponse is the part of the runner's JOB_RESPONSE_FILE the executor
// uses. The sandbox's identity comes from here, never from CUSTOM_ENV_*
// values the job can set.
type JobResponse struct {
	ID          *int64          `json:"id"`
	JobInfo     JobInfo         `json:"job_info"`
	GitInfo     GitInfo         `json:"git_info"`
	RunnerInfo  RunnerInfo      `json:"runner_info"`
	Image       JobImage        `json:"image"`
	Services    []JobImage      `json:"services"`
	Variables   []JobVariable   `json:"variables"`
	Credentials []Credential    `json:"credentials"`
	Steps       json.RawMessage `json:"steps"`
}

type GitInfo struct {
	RepoURL string `json:"repo_url"`
}

// Credential is a registry login GitLab sends with the job (the job token
// for its own registry, dependency proxy credentials).
type Credential struct {
	Type     string `json:"type"`
	URL      string `json:"url"`
	Username string `json:"username"`
	Password string `json:"password"`
}

type JobInfo struct {
	Name            string `json:"name"`
	Stage           string `json:"stage"`
	ProjectID       int64  `json:"project_id"`
	ProjectName     string `json:"project_name"`
	ProjectFullPath string `json:"project_full_path"`
	PipelineID      int64  `json:"pipeline_id"`
}

type RunnerInfo struct {
	Timeout int64 `json:"timeout"`
}

type JobImage struct {
	Name         string        `json:"name"`
	Alias        string        `json:"alias"`
	Command      []string      `json:"command"`
	Entrypoint   []string      `json:"entrypoint"`
	PullPolicy   []string      `json:"pull_policy"`
	Variables    []JobVariable `json:"variables"`
	ExecutorOpts ExecutorOpts  `json:"executor_opts"`
}

// ExecutorOpts are .gitlab-ci.yml's image: docker: options.
type ExecutorOpts struct {
	Docker struct {
		Platform string `json:"platform"`
		User     string `json:"user"`
	} `json:"docker"`
}

type JobVariable struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Public bool   `json:"public"`
	File   bool   `json:"file"`
	Masked bool   `json:"masked"`
	Raw    bool   `json:"raw"`
}

// maxJobResponseSize bounds what we read: real responses are kilobytes to
// a few megabytes; anything far larger is not a job response.
const maxJobResponseSize = 64 << 20

// ReadJobResponse loads and checks JOB_RESPONSE_FILE.
func ReadJobResponse(path string) (*JobResponse, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read job response: %w (the runner writes it before prepare; was this hook started by GitLab Runner?)", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxJobResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("read job response %s: %w", path, err)
	}
	if len(data) > maxJobResponseSize {
		return nil, fmt.Errorf("job response %s is larger than %d MiB: not a runner job response", path, maxJobResponseSize>>20)
	}
	job, err := ParseJobResponse(data)
	if err != nil {
		return nil, fmt.Errorf("job response %s: %w", path, err)
	}
	return job, nil
}

// ParseJobResponse decodes and checks a job response document.
func ParseJobResponse(data []byte) (*JobResponse, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("empty document: expected the runner's job JSON")
	}
	var job JobResponse
	if err := json.Unmarshal(data, &job); err != nil {
		return nil, fmt.Errorf("malformed JSON: %w", err)
	}
	if job.ID == nil {
		return nil, errors.New(`no "id": expected the runner's job JSON with the job id`)
	}
	if *job.ID <= 0 {
		return nil, fmt.Errorf(`"id" is %d: a job id is a positive number`, *job.ID)
	}
	return &job, nil
}

// TimeoutSeconds is the job's timeout with the runner's default applied.
func (j *JobResponse) TimeoutSeconds() int64 {
	if j.RunnerInfo.Timeout <= 0 {
		return int64(executor.DefaultJobTimeout / time.Second)
	}
	return j.RunnerInfo.Timeout
}
