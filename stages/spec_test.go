package stages

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"gitlab.com/dind-executor/dind-executor/config"
	"gitlab.com/dind-executor/dind-executor/executor"
)

func TestServiceAliases(t *testing.T) {
	cases := []struct {
		image, alias string
		want         []string
	}{
		{"docker:27-dind", "", []string{"docker"}},
		{"postgres:15", "db", []string{"postgres", "db"}},
		{"tutum/wordpress:latest", "", []string{"tutum__wordpress", "tutum-wordpress"}},
		{"registry:5000/grp/pg:15", "", []string{"registry__grp__pg", "registry-grp-pg"}},
		{"registry.example.com/grp/pg@sha256:abc", "pg, db postgres", []string{"registry.example.com__grp__pg", "registry.example.com-grp-pg", "pg", "db", "postgres"}},
		{"redis", "redis", []string{"redis"}},
	}
	for _, tc := range cases {
		if got := ServiceAliases(tc.image, tc.alias); !slices.Equal(got, tc.want) {
			t.Errorf("ServiceAliases(%q, %q) = %v, want %v", tc.image, tc.alias, got, tc.want)
		}
	}
}

func TestRegistryAuth(t *testing.T) {
	encoded := base64.StdEncoding.EncodeToString([]byte("cfg-user:cfg-pass"))
	job := &JobResponse{
		Variables: []JobVariable{{Key: "DOCKER_AUTH_CONFIG", Value: `{"auths":{"registry.example.com":{"auth":"` + encoded + `"}}}`}},
		Credentials: []Credential{
			{Type: "registry", URL: "registry.example.com", Username: "gitlab-ci-token", Password: "tok"},
			{Type: "registry", URL: "gitlab.example.com:5050", Username: "gitlab-ci-token", Password: "tok2"},
			{Type: "registry", URL: "https://index.docker.io/v1/", Username: "hub", Password: "hubpass"},
		},
	}
	cases := []struct {
		image    string
		wantUser string // "" means no credentials
	}{
		{"registry.example.com/grp/app:1", "cfg-user"}, // DOCKER_AUTH_CONFIG wins
		{"gitlab.example.com:5050/grp/app", "gitlab-ci-token"},
		{"alpine:3", "hub"},
		{"other.example.com/x", ""},
	}
	for _, tc := range cases {
		auth, err := registryAuth(tc.image, job)
		if err != nil {
			t.Fatalf("%s: %v", tc.image, err)
		}
		got := ""
		if auth != nil {
			got = auth.Username
		}
		if got != tc.wantUser {
			t.Errorf("registryAuth(%s) user = %q, want %q", tc.image, got, tc.wantUser)
		}
	}
	bad := &JobResponse{Variables: []JobVariable{{Key: "DOCKER_AUTH_CONFIG", Value: "{secret-not-json"}}}
	_, err := registryAuth("alpine", bad)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("malformed DOCKER_AUTH_CONFIG: error %v must exist and not echo the value", err)
	}
}

func TestSpecAppliesPolicy(t *testing.T) {
	id := int64(5)
	base := func() *JobResponse {
		return &JobResponse{ID: &id, Image: JobImage{Name: "docker:27-cli"},
			Services: []JobImage{{Name: "docker:27-dind"}, {Name: "postgres:15", Alias: "db"}}}
	}
	cases := []struct {
		name    string
		policy  config.Policy
		edit    func(*JobResponse)
		wantErr string
	}{
		{"allowed", config.Policy{AllowedImages: []string{"docker:*"}, AllowedServices: []string{"postgres:*"}}, nil, ""},
		{"image refused", config.Policy{AllowedImages: []string{"alpine:*"}}, nil, `disallowed image "docker:27-cli"`},
		{"service refused", config.Policy{AllowedServices: []string{"redis:*"}}, nil, `disallowed service "postgres:15"`},
		{"dind service needs no allow entry", config.Policy{AllowedServices: []string{"postgres:*"}}, nil, ""},
		{"user refused", config.Policy{AllowedUsers: []string{"1000"}}, func(j *JobResponse) { j.Image.ExecutorOpts.Docker.User = "root" }, `disallowed user "root"`},
		{"pull policy refused", config.Policy{}, func(j *JobResponse) { j.Image.PullPolicy = []string{"never"} }, "not one of the allowed pull policies"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Policy = tc.policy
			h := &Hooks{Config: cfg}
			job := base()
			if tc.edit != nil {
				tc.edit(job)
			}
			spec, err := h.Spec(executor.Identity{SandboxID: "0123456789abcdef", JobID: 5}, job)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(spec.Services) != 1 || spec.Services[0].Image.Name != "postgres:15" || !slices.Contains(spec.Services[0].Aliases, "db") {
				t.Errorf("services %+v, want only postgres with alias db (dind is the sandbox's own)", spec.Services)
			}
		})
	}
}

func TestProjectKeySeparatesInstances(t *testing.T) {
	job := func(url string, project int64) *JobResponse {
		return &JobResponse{GitInfo: GitInfo{RepoURL: url}, JobInfo: JobInfo{ProjectID: project}}
	}
	a := projectKey(job("https://gitlab-ci-token:x@gitlab.one.example/g/app.git", 7))
	if a != projectKey(job("https://gitlab-ci-token:y@gitlab.one.example/g/other.git", 7)) {
		t.Error("one project's key changed with the token or path")
	}
	if a == projectKey(job("https://gitlab.two.example/g/app.git", 7)) {
		t.Error("two instances' project 7 share a cache key")
	}
	if a == projectKey(job("https://gitlab.one.example/g/app.git", 8)) {
		t.Error("two projects share a cache key")
	}
}

func TestProjectKeySplitsProtectedRefs(t *testing.T) {
	protected := func(values ...string) *JobResponse {
		j := &JobResponse{GitInfo: GitInfo{RepoURL: "https://gitlab.example/g/app.git"}, JobInfo: JobInfo{ProjectID: 7}}
		for _, v := range values {
			j.Variables = append(j.Variables, JobVariable{Key: "CI_COMMIT_REF_PROTECTED", Value: v, Public: true})
		}
		return j
	}
	base := projectKey(protected())
	cases := []struct {
		name   string
		values []string
		want   string
	}{
		{"no variable (older GitLab): unprotected", nil, base},
		{"unprotected ref", []string{"false"}, base},
		{"protected ref", []string{"true"}, base + "-protected"},
		{"an unprotected job that adds true to its variables stays unprotected", []string{"false", "true"}, base},
		{"a protected job that adds false loses only its own cache", []string{"true", "false"}, base},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := projectKey(protected(tc.values...)); got != tc.want {
				t.Errorf("key %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPlatformOfAnOperatorImageIsRefused(t *testing.T) {
	operator := map[string]string{"docker:27-dind": "dind_image", "registry.example.com/helper:x86_64-v17": "helper_image", "docker:27-cli": "default_image"}
	cases := []struct {
		image, platform string
		wantErr         string
	}{
		{"docker:27-cli", "", ""},
		{"docker:27-cli", "linux/arm64", "default_image"},
		{"docker.io/library/docker:27-cli", "linux/arm64", "default_image"},
		{"index.docker.io/library/docker:27-dind", "linux/arm64", "dind_image"},
		{"registry.example.com/helper:x86_64-v17", "linux/amd64", "helper_image"},
		{"docker:27-cli-arm", "linux/arm64", ""},
		{"alpine", "linux/arm64", ""},
	}
	for _, tc := range cases {
		t.Run(tc.image+" "+tc.platform, func(t *testing.T) {
			err := checkPlatform(tc.image, tc.platform, operator)
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err %v, want %q", err, tc.wantErr)
			}
		})
	}
}
