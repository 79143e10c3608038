package stages

import (
	"fmt"
	"io"
	"path"
)

// IsDinDService reports whether a job service is a Docker-in-Docker
// daemon (docker:*dind*, from any registry path). The sandbox's own daemon
// stands in for it: it already answers as docker:2376 with the job's
// certificates, which is what such pipelines expect.
func IsDinDService(image string) bool {
	for _, pattern := range []string{"docker:*dind*", "*/docker:*dind*"} {
		if ok, _ := path.Match(pattern, image); ok {
			return true
		}
	}
	return false
}

// reportServices tells the job log what becomes of each services: entry.
func reportServices(log io.Writer, services []JobImage) {
	for _, s := range services {
		if IsDinDService(s.Name) {
			fmt.Fprintf(log, "Service %s: provided by the sandbox's own daemon (docker:2376, mutual TLS with this job's certificate)\n", s.Name)
			continue
		}
		fmt.Fprintf(log, "Service %s: starting on the job network as %v\n", s.Name, ServiceAliases(s.Name, s.Alias))
	}
}
