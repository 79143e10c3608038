package stages

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/distribution/reference"

	"gitlab.com/dind-executor/dind-executor/executor"
)

// registryAuth finds the login for an image's registry the way the runner
// does: the job's DOCKER_AUTH_CONFIG variable first, then the registry
// credentials GitLab sent with the job. nil when none matches.
func registryAuth(image string, job *JobResponse) (*executor.RegistryAuth, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return nil, fmt.Errorf("image %q is not a valid reference: %w", image, err)
	}
	domain := reference.Domain(named)
	if raw := job.variable("DOCKER_AUTH_CONFIG"); raw != "" {
		auth, err := authFromDockerConfig(raw, domain)
		if err != nil {
			return nil, err
		}
		if auth != nil {
			return auth, nil
		}
	}
	for _, c := range job.Credentials {
		if strings.EqualFold(c.Type, "registry") && sameRegistry(c.URL, domain) {
			return &executor.RegistryAuth{Server: domain, Username: c.Username, Password: c.Password}, nil
		}
	}
	return nil, nil
}

// authFromDockerConfig reads a docker config.json document's "auths".
func authFromDockerConfig(raw, domain string) (*executor.RegistryAuth, error) {
	var doc struct {
		Auths map[string]struct {
			Auth     string `json:"auth"`
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"auths"`
	}
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		// The value is the job's secret: never echo it.
		return nil, fmt.Errorf("the job's DOCKER_AUTH_CONFIG variable is not valid JSON (%d bytes): expected {\"auths\": {\"<registry>\": {\"auth\": \"<base64 user:password>\"}}}", len(raw))
	}
	for server, a := range doc.Auths {
		if !sameRegistry(server, domain) {
			continue
		}
		user, pass := a.Username, a.Password
		if a.Auth != "" {
			decoded, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("DOCKER_AUTH_CONFIG: the auth of %s is not base64", server)
			}
			var ok bool
			if user, pass, ok = strings.Cut(string(decoded), ":"); !ok {
				return nil, fmt.Errorf("DOCKER_AUTH_CONFIG: the auth of %s is not user:password", server)
			}
		}
		return &executor.RegistryAuth{Server: domain, Username: user, Password: pass}, nil
	}
	return nil, nil
}

// sameRegistry compares a credential's URL (which may carry a scheme or a
// path) with an image's registry domain.
func sameRegistry(url, domain string) bool {
	host := strings.TrimPrefix(strings.TrimPrefix(url, "https://"), "http://")
	host, _, _ = strings.Cut(host, "/")
	if domain == "docker.io" {
		// The names Docker Hub goes by in credentials.
		for _, alias := range []string{"docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"} {
			if strings.EqualFold(url, alias) || strings.EqualFold(host, alias) {
				return true
			}
		}
		return false
	}
	return strings.EqualFold(host, domain)
}

// variable is the value of a job variable from the job response, or "".
func (j *JobResponse) variable(key string) string {
	for _, v := range j.Variables {
		if v.Key == key {
			return v.Value
		}
	}
	return ""
}
