package stages

import (
	"strings"
	"testing"

	"gitlab.com/dind-executor/dind-executor/config"
)

func TestPlainTCPRequest(t *testing.T) {
	dind := []JobImage{{Name: "docker:27-dind", Alias: "dockerd"}}
	tests := []struct {
		name     string
		vars     map[string]string
		services []JobImage
		want     bool
	}{
		{"the recipe", map[string]string{"DOCKER_HOST": "tcp://docker:2375", "DOCKER_TLS_CERTDIR": ""}, dind, true},
		{"a dind alias", map[string]string{"DOCKER_HOST": "tcp://dockerd:2375"}, dind, true},
		{"no port, TLS off", map[string]string{"DOCKER_HOST": "tcp://docker"}, nil, true},
		{"no port, TLS verify on", map[string]string{"DOCKER_HOST": "tcp://docker", "DOCKER_TLS_VERIFY": "1"}, nil, false},
		{"mutual TLS port", map[string]string{"DOCKER_HOST": "tcp://docker:2376"}, dind, false},
		{"an alias the job did not declare", map[string]string{"DOCKER_HOST": "tcp://dockerd:2375"}, nil, false},
		{"another host", map[string]string{"DOCKER_HOST": "tcp://build-farm.example.com:2375"}, dind, false},
		{"unix socket", map[string]string{"DOCKER_HOST": "unix:///var/run/docker.sock"}, dind, false},
		{"no DOCKER_HOST, TLS certdir empty", map[string]string{"DOCKER_TLS_CERTDIR": ""}, dind, false},
		{"not a URL", map[string]string{"DOCKER_HOST": "tcp://docker:%zz"}, dind, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := &JobResponse{Services: tt.services}
			for k, v := range tt.vars {
				job.Variables = append(job.Variables, JobVariable{Key: k, Value: v})
			}
			host, got := plainTCPRequest(job)
			if got != tt.want {
				t.Fatalf("plainTCPRequest = %v (%q), want %v", got, host, tt.want)
			}
			if got && host != tt.vars["DOCKER_HOST"] {
				t.Errorf("reported DOCKER_HOST %q, want the job's %q", host, tt.vars["DOCKER_HOST"])
			}
		})
	}
}

func TestCheckPlainTCPNamesTheVariablesToChange(t *testing.T) {
	if err := checkPlainTCP(config.PlainTCPBuildOnly, "tcp://docker:2375"); err != nil {
		t.Fatalf("build-only refused: %v", err)
	}
	err := checkPlainTCP(config.PlainTCPRefuse, "tcp://docker:2375")
	if err == nil {
		t.Fatal("refuse allowed the job")
	}
	for _, want := range []string{"DOCKER_HOST=tcp://docker:2375", `plain_tcp = "refuse"`, "remove DOCKER_HOST and DOCKER_TLS_CERTDIR", "DOCKER_TLS_VERIFY=1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
