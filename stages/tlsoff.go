package stages

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"

	"gitlab.com/dind-executor/dind-executor/config"
	"gitlab.com/dind-executor/dind-executor/executor"
)

// plainTCPRequest is the job's DOCKER_HOST when it asks for the sandbox's
// daemon without TLS, as pipelines written for a docker:dind service with
// DOCKER_TLS_CERTDIR="" do: tcp://docker:2375, or one of the daemon's
// other names, or no port (the docker CLI's 2375 when TLS is off).
// Anything else (2376, another host, a unix socket) is left to the job.
func plainTCPRequest(job *JobResponse) (string, bool) {
	host, tlsVerify := "", ""
	for _, v := range job.Variables {
		switch v.Key {
		case "DOCKER_HOST":
			host = v.Value
		case "DOCKER_TLS_VERIFY":
			tlsVerify = v.Value
		}
	}
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "tcp" {
		return "", false
	}
	names := append([]string{"docker"}, daemonAliases(job.Services)...)
	if !slices.Contains(names, u.Hostname()) {
		return "", false
	}
	switch u.Port() {
	case strconv.Itoa(executor.DaemonPlainPort):
		return host, true
	case "":
		return host, tlsVerify == ""
	}
	return "", false
}

// checkPlainTCP applies the operator's sandbox.plain_tcp to a job that
// asks for a daemon without TLS.
func checkPlainTCP(policy, dockerHost string) error {
	if policy != config.PlainTCPRefuse {
		return nil
	}
	return fmt.Errorf("the job's variables ask for its Docker daemon without TLS (DOCKER_HOST=%s), and this runner refuses that (sandbox.plain_tcp = %q): "+
		"remove DOCKER_HOST and DOCKER_TLS_CERTDIR from the job's variables (.gitlab-ci.yml variables:, the project's or group's CI/CD variables); "+
		"the sandbox already sets DOCKER_HOST=%s, DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH=%s for mutual TLS with this job's own certificate",
		dockerHost, policy, executor.DaemonHostInJob, executor.ClientCertDir)
}
