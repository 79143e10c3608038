package executor

import (
	"archive/tar"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor/tlsca"
)

// A job written with TLS off (DOCKER_HOST=tcp://docker:2375) gets a plain
// endpoint that only its build container reaches: a network of the daemon
// and the build container alone (internal: nothing else routes there),
// where the daemon answers to its names, and a relay inside the daemon
// container (a copy of this binary, `plain-relay`) listening on the
// daemon's address in that network only and passing each connection to
// dockerd's unix socket. The helper, the services and other jobs are on
// other networks and cannot reach it; the mutual-TLS endpoint stays.

// relayPath is where the relay binary is placed in the daemon container.
const relayPath = "/dind-executor/plain-relay"

// plainEndpoint is the network of a job given a plain endpoint.
type plainEndpoint struct {
	network string
	subnet  string
}

// createPlainNetwork makes the sandbox's network of the daemon and the
// build container and returns it with its subnet.
func (e *docker) createPlainNetwork(ctx context.Context, id Identity, mtu int, labels map[string]string) (plainEndpoint, error) {
	name, err := e.createNetwork(ctx, id.Name(RolePlainNetwork), mtu, labels, true)
	if err != nil {
		return plainEndpoint{}, err
	}
	res, err := e.api.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if err != nil {
		return plainEndpoint{}, fmt.Errorf("inspect network %s: %w", name, err)
	}
	for _, c := range res.Network.IPAM.Config {
		if c.Subnet.IsValid() && c.Subnet.Addr().Is4() {
			return plainEndpoint{network: name, subnet: c.Subnet.String()}, nil
		}
	}
	return plainEndpoint{}, fmt.Errorf("network %s has no IPv4 subnet", name)
}

// daemon moves the daemon's names from the job network to the plain
// network (so that, from the build container, "docker" is the address the
// relay listens on) and has the daemon wrapper start the relay.
func (pe plainEndpoint) daemon(c containerSpec) containerSpec {
	for _, ep := range c.networking.EndpointsConfig {
		c.joins = append(c.joins, networkJoin{network: pe.network, aliases: ep.Aliases})
		ep.Aliases = nil
	}
	// The Engine makes a container's hostname an alias on every network
	// it joins: "docker" would answer on the job network too.
	c.config.Hostname = ""
	c.config.Env = append(slices.Clone(c.config.Env), "PLAIN_RELAY="+relayPath, "PLAIN_RELAY_SUBNET="+pe.subnet,
		"PLAIN_RELAY_PORT="+strconv.Itoa(DaemonPlainPort))
	return c
}

// build joins the build container to the plain network and points its
// docker CLI there without TLS, as the docker executor's dind service with
// DOCKER_TLS_CERTDIR="" does; the client certificate stays for a job that
// talks mutual TLS to port 2376 all the same.
func (pe plainEndpoint) build(c containerSpec) containerSpec {
	c.joins = append(c.joins, networkJoin{network: pe.network})
	var env []string
	for _, kv := range c.config.Env {
		switch envName(kv) {
		case "DOCKER_TLS_VERIFY", "DOCKER_TLS_CERTDIR":
		case "DOCKER_HOST":
			env = append(env, "DOCKER_HOST=tcp://"+tlsca.DaemonServerName+":"+strconv.Itoa(DaemonPlainPort))
		default:
			env = append(env, kv)
		}
	}
	c.config.Env = env
	return c
}

func envName(kv string) string {
	for i := range len(kv) {
		if kv[i] == '=' {
			return kv[:i]
		}
	}
	return kv
}

// networkJoin is a network a container is connected to after it is
// created and before it starts: the Engine API before 1.44 creates a
// container on one network only.
type networkJoin struct {
	network string
	aliases []string
}

func (e *docker) joinNetworks(ctx context.Context, containerID string, c containerSpec) error {
	for _, j := range c.joins {
		if _, err := e.api.NetworkConnect(ctx, j.network, client.NetworkConnectOptions{
			Container: containerID, EndpointConfig: &network.EndpointSettings{Aliases: j.aliases},
		}); err != nil {
			return fmt.Errorf("connect %s to network %s: %w", c, j.network, err)
		}
	}
	return nil
}

// copyRelay places the relay binary in the daemon container, streamed
// from disk. It must be static and built for the Engine's architecture:
// the daemon image has its own C library, or none.
func (e *docker) copyRelay(ctx context.Context, containerID, binary string) error {
	if binary == "" {
		return errors.New("this dind-executor was started without its own path, so it cannot serve a job written with TLS off")
	}
	info, err := e.api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return fmt.Errorf("ask the Engine its architecture: %w", err)
	}
	if err := checkRelayBinary(binary, info.Info.Architecture); err != nil {
		return err
	}
	f, err := os.Open(binary)
	if err != nil {
		return fmt.Errorf("open the relay binary: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat the relay binary: %w", err)
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		now := time.Now()
		err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "dind-executor/", Mode: 0o755, ModTime: now})
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: relayPath[1:], Mode: 0o755, Size: st.Size(), ModTime: now})
		}
		if err == nil {
			_, err = io.CopyN(tw, f, st.Size())
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	if _, err := e.api.CopyToContainer(ctx, containerID, client.CopyToContainerOptions{DestinationPath: "/", Content: pr}); err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("copy the plain endpoint's relay into daemon container %s: %w", containerID, err)
	}
	return nil
}

// elfMachines maps the Engine's architecture names to ELF machines.
var elfMachines = map[string]elf.Machine{
	"x86_64": elf.EM_X86_64, "amd64": elf.EM_X86_64,
	"aarch64": elf.EM_AARCH64, "arm64": elf.EM_AARCH64,
}

// checkRelayBinary refuses a binary that cannot run in any daemon image:
// dynamically linked, or for another architecture than the Engine's.
func checkRelayBinary(path, engineArch string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("read the relay binary %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked, so it cannot run in a daemon image as the relay of a job written with TLS off: build dind-executor with CGO_ENABLED=0", path)
		}
	}
	if want, ok := elfMachines[engineArch]; ok && f.Machine != want {
		return fmt.Errorf("%s is built for %s but the Engine runs %s: the relay of a job written with TLS off runs on the Engine's host; use a dind-executor built for %s", path, f.Machine, engineArch, engineArch)
	}
	return nil
}
