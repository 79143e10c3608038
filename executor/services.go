package executor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

const (
	servicePollInterval = 100 * time.Millisecond
	serviceMaxPorts     = 20 // the runner's health check probes at most the 20 lowest ports
)

// waitServices waits, for all services at once, until each accepts TCP on
// one of its exposed ports, bounded by s.ServiceWait. As under the docker
// executor, a service that does not come up is a warning in the job log,
// with its last log lines, and the job goes on: the job decides whether
// it needed it.
func (e *docker) waitServices(ctx context.Context, s plan, networkName string, log io.Writer) {
	if s.ServiceWait <= 0 || len(s.Services) == 0 {
		return
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, svc := range s.Services {
		wg.Go(func() {
			msg := e.waitService(ctx, s.Identity.SandboxID, serviceName(s.Identity.SandboxID, i), networkName, s.ServiceWait)
			mu.Lock()
			defer mu.Unlock()
			if msg == "" {
				fmt.Fprintf(log, "Service %s is up (as %s)\n", svc.Image.Name, strings.Join(svc.Aliases, ", "))
				return
			}
			fmt.Fprintf(log, "WARNING: service %s (%s) %s\n", svc.Image.Name, strings.Join(svc.Aliases, ", "), msg)
		})
	}
	wg.Wait()
}

// waitService returns "" once any exposed TCP port of the container (or
// its HEALTHCHECK_TCP_PORT) accepts a connection, or what went wrong, with
// the service's logs. The ports are tried from the sandbox's daemon
// container, which is on the job network: the executor itself may not
// route to it (a runner in a container, a remote Engine).
func (e *docker) waitService(ctx context.Context, id SandboxID, name, networkName string, timeout time.Duration) string {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := e.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return "could not be inspected: " + err.Error()
	}
	ports := tcpPorts(res.Container.Config.ExposedPorts)
	if port, ok := healthCheckPort(res.Container.Config.Env); ok {
		ports = []uint16{port}
	}
	if len(ports) == 0 {
		return "" // nothing to probe, as the runner's health check
	}
	ep := res.Container.NetworkSettings.Networks[networkName]
	if ep == nil || !ep.IPAddress.IsValid() {
		return "has no address on the job network" + e.logTail(name)
	}
	for {
		for _, port := range ports {
			if e.acceptsTCP(ctx, id.Name(RoleDaemon), ep.IPAddress.String(), int(port)) {
				return ""
			}
		}
		if st, err := e.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{}); err == nil && st.Container.State != nil && !st.Container.State.Running {
			return fmt.Sprintf("exited with code %d before it accepted connections%s", st.Container.State.ExitCode, e.logTail(name))
		}
		select {
		case <-ctx.Done():
			return fmt.Sprintf("did not accept TCP on port(s) %v within %s (raise [sandbox] wait_for_services_timeout if it starts slowly)%s", ports, timeout, e.logTail(name))
		case <-time.After(servicePollInterval):
		}
	}
}

// probeScript says "open" when host:port accepts a connection from inside
// the container: nc connects, runs true and exits 0; one that cannot
// connect fails. The spellings cover busybox's two nc builds and nc -z.
const probeScript = `for nc in nc "busybox nc"; do
  command -v ${nc%% *} >/dev/null 2>&1 || continue
  for args in "-w 2 $0 $1 -e true" "-w 2 -e true $0 $1" "-z -w 2 $0 $1"; do
    if $nc $args </dev/null >/dev/null 2>&1; then echo open; exit 0; fi
  done
done`

// acceptsTCP tells whether host:port accepts a connection from inside
// container.
func (e *docker) acceptsTCP(ctx context.Context, container, host string, port int) bool {
	var out bytes.Buffer
	code, err := e.runInContainer(ctx, container, &out, "sh", "-c", probeScript, host, strconv.Itoa(port))
	return err == nil && code == 0 && strings.TrimSpace(out.String()) == "open"
}

// tcpPorts lists the lowest exposed TCP ports, in order.
func tcpPorts(exposed network.PortSet) []uint16 {
	var ports []uint16
	for p := range exposed {
		if p.Proto() == network.TCP {
			ports = append(ports, p.Num())
		}
	}
	slices.Sort(ports)
	if len(ports) > serviceMaxPorts {
		ports = ports[:serviceMaxPorts]
	}
	return ports
}

// healthCheckPort is the service's HEALTHCHECK_TCP_PORT, the one port the
// runner probes instead of the exposed ones when a service (or the job,
// whose variables every service gets) sets it.
func healthCheckPort(env []string) (uint16, bool) {
	for _, kv := range slices.Backward(env) {
		if v, ok := strings.CutPrefix(kv, "HEALTHCHECK_TCP_PORT="); ok {
			port, err := strconv.ParseUint(v, 10, 16)
			if err != nil || port == 0 {
				return 0, false
			}
			return uint16(port), true
		}
	}
	return 0, false
}
