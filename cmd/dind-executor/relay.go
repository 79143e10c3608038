package main

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/spf13/cobra"

	"gitlab.com/dind-executor/dind-executor/executor/plainrelay"
)

// relayCommand is not for operators: a copy of this binary runs it inside
// a sandbox's daemon container for a job written with TLS off (see
// executor/plainrelay).
func relayCommand(ctx context.Context) *cobra.Command {
	var subnet, socket string
	var port int
	cmd := &cobra.Command{
		Use:    "plain-relay",
		Short:  "inside a daemon container: serve dockerd's socket as plain TCP on the build container's network only",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			prefix, err := netip.ParsePrefix(subnet)
			if err != nil {
				return fmt.Errorf("--subnet %q: %w", subnet, err)
			}
			return plainrelay.Serve(ctx, plainrelay.Options{
				Subnet: prefix, Port: port, Socket: socket,
				AddressWait: 30 * time.Second, MaxConns: 256,
			})
		},
	}
	cmd.Flags().StringVar(&subnet, "subnet", "", "listen on this container's address in this subnet")
	cmd.Flags().IntVar(&port, "port", 2375, "port to listen on")
	cmd.Flags().StringVar(&socket, "socket", "/var/run/docker.sock", "dockerd's unix socket")
	return cmd
}
