package executor

import (
	"context"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// diagnoseTimeout bounds the look at the Engine after a failure: the
// caller's own context has often ended by then.
const diagnoseTimeout = 10 * time.Second

// killedSettle is how long a stage killed by a signal is watched for its
// container stopping too: the Engine kills a container's processes a moment
// before it records the container as stopped.
const killedSettle = 3 * time.Second

// explainExecFailure says, after Exec failed for a reason of the sandbox
// rather than the script's, what became of it: the Engine gone or
// restarted, the container removed or stopped. "" when it finds nothing
// wrong. A restarted Engine stops every container, so the sandbox is lost
// and the job has to run again. exitCode is the script's, when it has one:
// one killed by a signal (128+) is watched a little longer.
func (e *docker) explainExecFailure(id SandboxID, role Role, exitCode int) string {
	ctx, cancel := context.WithTimeout(context.Background(), diagnoseTimeout)
	defer cancel()
	settle := time.Now()
	if exitCode >= 128 {
		settle = settle.Add(killedSettle)
	}
	for {
		why := e.sandboxLost(ctx, id, role)
		if why != "" || time.Now().After(settle) {
			return why
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (e *docker) sandboxLost(ctx context.Context, id SandboxID, role Role) string {
	if err := e.ping(ctx); err != nil {
		return "the Docker Engine stopped answering during the stage (stopped or restarting): the sandbox is lost; retry the job once the Engine is back"
	}
	name := id.Name(role)
	res, err := e.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return fmt.Sprintf("the %s container %s is gone: it was removed during the stage (cleanup or gc ran, or an operator removed it)", role, name)
	case err != nil:
		return ""
	}
	st := res.Container.State
	if st == nil || st.Running {
		return ""
	}
	if role != RoleDaemon && e.containerRunning(ctx, id.Name(RoleDaemon)) {
		// A restarted or stopping Engine stops every container of the
		// sandbox. This one alone stopped: its main process ended, which
		// the job's own processes can do (kill 1 in the build container).
		// The script's code is the job's failure, not the host's.
		return ""
	}
	return fmt.Sprintf("the %s container %s stopped during the stage (state %s, exit code %d, at %s): the Docker Engine was restarted "+
		"or the container was stopped; the sandbox is lost, retry the job", role, name, st.Status, st.ExitCode, st.FinishedAt)
}

// containerRunning tells whether the named container is running; false
// when it cannot be inspected.
func (e *docker) containerRunning(ctx context.Context, name string) bool {
	res, err := e.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	return err == nil && res.Container.State != nil && res.Container.State.Running
}
