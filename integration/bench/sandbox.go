package main

import (
	"context"
	"fmt"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor"
)

// sandbox is what the bench needs to know about the sandbox a prepare hook
// made: its id and the names of its parts (the Engine's events and the
// docker CLI use names). It is found by its labels, as ps and gc find it.
type sandbox struct {
	id      string
	network string
	// containers maps each container's role (executor.RoleDaemon, ...) to
	// its name.
	containers map[executor.Role]string
}

// findSandbox finds the sandbox of the attempt whose JOB_RESPONSE_FILE is
// jobResponse: every object of a sandbox carries that path as a label.
func findSandbox(ctx context.Context, api *client.Client, jobResponse string) (sandbox, error) {
	byResponse := client.Filters{}.Add("label", executor.LabelJobResponse+"="+jobResponse)
	cs, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: byResponse})
	if err != nil {
		return sandbox{}, fmt.Errorf("list the sandbox's containers: %w", err)
	}
	sb := sandbox{containers: map[executor.Role]string{}}
	for _, c := range cs.Items {
		sb.id = c.Labels[executor.LabelSandbox]
		if len(c.Names) > 0 {
			sb.containers[executor.Role(c.Labels[executor.LabelRole])] = c.Names[0][1:]
		}
	}
	if sb.id == "" {
		return sb, fmt.Errorf("no container is labelled with the job response %s", jobResponse)
	}
	ns, err := api.NetworkList(ctx, client.NetworkListOptions{Filters: byResponse})
	if err != nil {
		return sb, fmt.Errorf("list the sandbox's network: %w", err)
	}
	if len(ns.Items) > 0 {
		sb.network = ns.Items[0].Name
	}
	return sb, nil
}

// name is the name of the sandbox's container of role ("" if none).
func (sb sandbox) name(role executor.Role) string { return sb.containers[role] }
