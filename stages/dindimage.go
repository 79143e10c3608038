package stages

import (
	"fmt"
	"slices"
	"strings"

	"gitlab.com/dind-executor/dind-executor/config"
	"gitlab.com/dind-executor/dind-executor/executor"
)

// daemonImage decides which image the job's daemon runs, with a line for
// the job log saying which and why: the operator's dind_image, unless a
// dind service of the job names another image (a pinned version such as
// docker:24.0.5-dind) that policy.allowed_dind_images lists. The daemon
// container is the sandbox's privileged one, so a job chooses its image
// only where the operator opted in, and never under the rootless profile;
// everywhere else the operator's image serves, and the job log says the
// service's image was not used.
func (h *Hooks) daemonImage(job *JobResponse, operatorImages map[string]string) (*executor.ImageRef, string, error) {
	c := h.Config
	operator := c.Sandbox.DindImage
	var names, pinned, notAllowed []string
	var chosen *JobImage
	for i, s := range job.Services {
		if !IsDinDService(s.Name) {
			continue
		}
		names = append(names, s.Name)
		switch {
		case sameImage(s.Name, operator):
		case c.Policy.DinDImageAllowed(s.Name):
			if !slices.ContainsFunc(pinned, func(p string) bool { return sameImage(p, s.Name) }) {
				pinned = append(pinned, s.Name)
			}
			chosen = &job.Services[i]
		default:
			notAllowed = append(notAllowed, s.Name)
		}
	}
	rootless := c.Sandbox.DaemonSecurity == config.DaemonSecurityRootless
	switch {
	case len(pinned) > 0 && rootless:
		// The rootless container runs nothing as root but the executor's
		// own short commands (its tun device, the readiness relay, service
		// probes), with the image's binaries, and its /proc/sys is not
		// read-only (systempaths=unconfined): a job's image there would
		// run as the host's root.
		return nil, fmt.Sprintf("Daemon image: %s, the runner's dind_image, not %s as the job's services ask: "+
			"the rootless profile runs only the runner's dind_image (the executor runs a few commands of the image as root in its container)", operator, strings.Join(pinned, ", ")), nil
	case len(pinned) > 1:
		return nil, "", fmt.Errorf("services %s ask for %d daemon images, and the sandbox has one daemon: name one dind image in the job", strings.Join(pinned, ", "), len(pinned))
	case len(pinned) == 1:
		s := chosen
		if err := checkPlatform(s.Name, s.ExecutorOpts.Docker.Platform, operatorImages); err != nil {
			return nil, "", fmt.Errorf("service %s: %w", s.Name, err)
		}
		ref, err := h.imageRef(s.Name, s.PullPolicy, s.ExecutorOpts.Docker.Platform, job)
		if err != nil {
			return nil, "", fmt.Errorf("service %s: %w", s.Name, err)
		}
		return &ref, fmt.Sprintf("Daemon image: %s, as service %s asks (policy.allowed_dind_images lists it; the runner's dind_image is %s)", s.Name, s.Name, operator), nil
	case len(notAllowed) > 0:
		return nil, fmt.Sprintf("Daemon image: %s, the runner's dind_image, not %s as the job's services ask: policy.allowed_dind_images does not list it "+
			"(the runner's operator decides which daemon images a job may pin)", operator, strings.Join(notAllowed, ", ")), nil
	case len(names) > 0:
		return nil, fmt.Sprintf("Daemon image: %s, the runner's dind_image, which service %s names", operator, strings.Join(names, ", ")), nil
	}
	return nil, fmt.Sprintf("Daemon image: %s, the runner's dind_image", operator), nil
}
