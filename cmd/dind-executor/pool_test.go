package main

import (
	"slices"
	"strings"
	"testing"
)

// The background refill outlives the job: it inherits where the config
// and the Engine are, and none of the job's variables.
func TestRefillEnvCarriesNoJobVariables(t *testing.T) {
	env := map[string]string{
		"PATH":                      "/usr/bin",
		"DIND_EXECUTOR_CONFIG":      "/etc/dind-executor/config.toml",
		"DOCKER_HOST":               "unix:///run/docker.sock",
		"CUSTOM_ENV_CI_JOB_TOKEN":   "job-token-value",
		"CUSTOM_ENV_SECRET":         "s3cr3t",
		"JOB_RESPONSE_FILE":         "/tmp/custom-executor1/response.json",
		"BUILD_FAILURE_EXIT_CODE":   "1",
		"CUSTOM_ENV_DOCKER_HOST":    "tcp://evil:2375",
		"DIND_EXECUTOR_LOG_LEVEL":   "debug",
		"SYSTEM_FAILURE_EXIT_CODE":  "2",
		"RUNNER_TEMP_PROJECT_DIR":   "/builds/x.tmp",
		"CUSTOM_ENV_CI_REGISTRY_PW": "registry-password-value",
	}
	got := refillEnv(func(k string) string { return env[k] })
	want := []string{"PATH=/usr/bin", "DIND_EXECUTOR_CONFIG=/etc/dind-executor/config.toml", "DIND_EXECUTOR_LOG_LEVEL=debug", "DOCKER_HOST=unix:///run/docker.sock"}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("refill environment %v, want %v", got, want)
	}
	for _, kv := range got {
		if strings.Contains(kv, "CUSTOM_ENV") || strings.Contains(kv, "value") || strings.Contains(kv, "s3cr3t") {
			t.Errorf("a job variable reached the refill: %s", kv)
		}
	}
}
