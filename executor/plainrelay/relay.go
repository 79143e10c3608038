// Package plainrelay is the plain-TCP endpoint of a sandbox's daemon for
// jobs written with TLS off (DOCKER_HOST=tcp://docker:2375). It runs inside
// the daemon container, listens only on the container's address in one
// subnet (the network the daemon shares with the build container alone)
// and relays each connection to dockerd's unix socket. dockerd itself
// keeps its mutual-TLS listener: its TLS settings apply to every TCP
// listener it has, so a plain one cannot live beside it.
package plainrelay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Options say where to listen and what to relay to.
type Options struct {
	Subnet netip.Prefix // the listener binds the container's address in it
	Port   int
	Socket string // dockerd's unix socket
	// AddressWait bounds the wait for the address to appear.
	AddressWait time.Duration
	// MaxConns bounds connections relayed at once; more wait to be accepted.
	MaxConns int
}

// Serve listens and relays until ctx ends.
func Serve(ctx context.Context, o Options) error {
	addr, err := waitForAddress(ctx, o.Subnet, o.AddressWait)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(addr.String(), strconv.Itoa(o.Port)))
	if err != nil {
		return fmt.Errorf("listen on %s port %d: %w", addr, o.Port, err)
	}
	return relay(ctx, ln, o.Subnet, o.Socket, max(o.MaxConns, 1))
}

// relay accepts on ln until ctx ends and joins each connection from a peer
// in subnet to a new connection to the unix socket. Binding the address is
// not enough: Linux takes a packet for any of the host's addresses on any
// of its interfaces, so a container on the daemon's other network could
// reach this one with a route or a raw socket (NET_RAW is a default
// capability); its replies would go out on the plain network, where only
// a peer whose address is in subnet receives them.
func relay(ctx context.Context, ln net.Listener, subnet netip.Prefix, socket string, maxConns int) error {
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	slots := make(chan struct{}, maxConns)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		conn, err := ln.Accept()
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		if !peerIn(conn, subnet) {
			_ = conn.Close()
			<-slots
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			join(ctx, conn, socket)
		})
	}
}

// peerIn says whether conn comes from an address in subnet.
func peerIn(conn net.Conn, subnet netip.Prefix) bool {
	peer, err := netip.ParseAddrPort(conn.RemoteAddr().String())
	return err == nil && subnet.Contains(peer.Addr().Unmap())
}

// join copies both ways until both sides are done, passing on each
// side's end of writing (the docker CLI half-closes after a request body).
func join(ctx context.Context, conn net.Conn, socket string) {
	defer conn.Close()
	var d net.Dialer
	up, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return
	}
	defer up.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close(); _ = up.Close() })
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { copyHalf(up, conn) })
	copyHalf(conn, up)
	wg.Wait()
}

type halfCloser interface{ CloseWrite() error }

func copyHalf(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	if hc, ok := dst.(halfCloser); ok {
		_ = hc.CloseWrite()
	}
}

// waitForAddress returns this host's address in subnet, waiting up to
// wait for the interface to get it.
func waitForAddress(ctx context.Context, subnet netip.Prefix, wait time.Duration) (netip.Addr, error) {
	deadline := time.Now().Add(wait)
	for {
		addr, err := addressIn(subnet)
		if err == nil {
			return addr, nil
		}
		if time.Now().After(deadline) {
			return netip.Addr{}, err
		}
		select {
		case <-ctx.Done():
			return netip.Addr{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func addressIn(subnet netip.Prefix) (netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("list interface addresses: %w", err)
	}
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipnet.IP)
		if ok && subnet.Contains(ip.Unmap()) {
			return ip.Unmap(), nil
		}
	}
	return netip.Addr{}, errors.New("no interface has an address in " + subnet.String())
}
