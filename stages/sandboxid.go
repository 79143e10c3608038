package stages

import (
	"crypto/sha256"
	"encoding/hex"

	"gitlab.com/dind-executor/dind-executor/executor"
)

// SandboxID names one job attempt's sandbox without storing anything: it
// is derived from the runner host's name and the absolute JOB_RESPONSE_FILE
// path, which lies in a fresh temp dir the runner makes for every prepare
// attempt and keeps until cleanup. So every hook of one attempt finds the
// same sandbox, a retried prepare starts a new one, and two runners whose
// GitLab job ids collide still get two sandboxes.
func SandboxID(hostname, jobResponsePath string) executor.SandboxID {
	sum := sha256.Sum256([]byte(hostname + "\x00" + jobResponsePath))
	return executor.SandboxID(hex.EncodeToString(sum[:8]))
}
