package stages

import (
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/distribution/reference"
)

// dindTag tells a Docker-in-Docker image by its tag: docker:dind,
// docker:27-dind, docker:27.3-dind-rootless.
const dindTag = "dind"

// IsDinDService reports whether a job service is a Docker-in-Docker
// daemon: an image whose repository is named docker (from any registry,
// mirror or dependency proxy path) with a dind tag, whatever digest
// follows. The sandbox's own daemon stands in for it: it already answers
// as docker:2376 with the job's certificates, which is what such
// pipelines expect.
func IsDinDService(image string) bool {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil || path.Base(reference.Path(named)) != "docker" {
		return false
	}
	tagged, ok := named.(reference.Tagged)
	return ok && strings.Contains(tagged.Tag(), dindTag)
}

// isRootlessDinD is a dind service that asks for a rootless daemon.
func isRootlessDinD(image string) bool {
	return IsDinDService(image) && strings.Contains(image, "dind-rootless")
}

// daemonAliases are the names a job's dind services ask their daemon to
// answer to, besides docker: the docker executor's aliases for each
// (image path and the job's alias values). The sandbox's one daemon
// answers to all of them.
func daemonAliases(services []JobImage) []string {
	var out []string
	for _, s := range services {
		if !IsDinDService(s.Name) {
			continue
		}
		for _, a := range ServiceAliases(s.Name, s.Alias) {
			if a != "docker" && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// checkServices refuses what the sandbox cannot serve faithfully, with
// what to change in .gitlab-ci.yml. A rootless dind service is served only
// by a rootless sandbox daemon (daemon_security = "rootless").
func checkServices(services []JobImage, rootlessDaemon bool, limit int) error {
	containers := 0
	for _, s := range services {
		if !IsDinDService(s.Name) {
			containers++
		}
	}
	if limit > 0 && containers > limit {
		return fmt.Errorf("the job asks for %d services and this runner allows at most %d (each is a container with the sandbox's limits of its own): "+
			"drop some from services:, or ask the runner's operator to raise [limits] services in the dind-executor config", containers, limit)
	}
	for _, s := range services {
		switch {
		case isRootlessDinD(s.Name) && !rootlessDaemon:
			return fmt.Errorf("service %s asks for a rootless Docker daemon, and this executor's sandbox daemon is not rootless: "+
				"use docker:dind (the sandbox's daemon then serves the job over mutual TLS) or a runner with a rootless profile", s.Name)
		case !IsDinDService(s.Name) && slices.Contains(ServiceAliases(s.Name, s.Alias), "docker"):
			return fmt.Errorf("service %s would answer as docker, the name of the sandbox's own Docker daemon: give it another alias", s.Name)
		}
	}
	return nil
}

// reportServices tells the job log what becomes of each services: entry.
func reportServices(log io.Writer, services []JobImage) {
	for _, s := range services {
		if IsDinDService(s.Name) {
			fmt.Fprintf(log, "Service %s: provided by the sandbox's own daemon as %v (port 2376, mutual TLS with this job's certificate)\n",
				s.Name, append([]string{"docker"}, daemonAliases([]JobImage{s})...))
			continue
		}
		fmt.Fprintf(log, "Service %s: starting on the job network as %v\n", s.Name, ServiceAliases(s.Name, s.Alias))
	}
}
