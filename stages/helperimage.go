package stages

import (
	"regexp"
	"strings"
)

const helperRepository = "registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper"

var (
	releaseVersion = regexp.MustCompile(`^\d+\.\d+\.\d+$`)
	gitRevision    = regexp.MustCompile(`^[0-9a-f]{8,40}$`)
)

// DefaultHelperImage is the official helper image matching the runner that
// calls us, tagged the way the runner tags it: <arch>-v<version> for a
// release, <arch>-<revision> for a development build, else latest.
func DefaultHelperImage(version, revision, arch string) string {
	a := helperArch(arch)
	switch {
	case releaseVersion.MatchString(version):
		return helperRepository + ":" + a + "-v" + version
	case gitRevision.MatchString(revision):
		return helperRepository + ":" + a + "-" + revision[:8]
	default:
		return helperRepository + ":" + a + "-latest"
	}
}

func helperArch(runnerArch string) string {
	switch strings.TrimPrefix(runnerArch, "linux/") {
	case "arm64", "aarch64":
		return "arm64"
	case "arm":
		return "arm"
	case "s390x":
		return "s390x"
	case "ppc64le":
		return "ppc64le"
	default:
		return "x86_64"
	}
}
