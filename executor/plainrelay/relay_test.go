package plainrelay

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// upstream is a unix-socket server that answers each line with its upper
// case and, when the client half-closes, "bye".
func upstream(t *testing.T) string {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						io.WriteString(c, "bye\n")
						return
					}
					io.WriteString(c, strings.ToUpper(line))
				}
			}()
		}
	}()
	return socket
}

func TestRelayJoinsEachConnectionToTheSocketAndPassesHalfClose(t *testing.T) {
	socket := upstream(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay(ctx, ln, netip.MustParsePrefix("127.0.0.0/8"), socket, 2) }()

	for i := range 3 { // more connections, one after another, than slots
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "ping\n")
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != "PING\nbye\n" {
			t.Fatalf("connection %d: got %q, %v; want PING then bye", i, got, err)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("relay ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("relay did not stop when its context ended")
	}
}

// A peer outside the subnet (one that reached the address from another
// network) is closed on, unanswered; one inside is relayed.
func TestRelayAnswersOnlyPeersInItsSubnet(t *testing.T) {
	socket := upstream(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go relay(ctx, ln, netip.MustParsePrefix("127.0.0.1/32"), socket, 1)

	tests := []struct {
		from string
		want string
	}{
		{"127.0.0.2", ""}, // outside 127.0.0.1/32: closed, nothing relayed
		{"127.0.0.1", "PING\nbye\n"},
	}
	for _, tt := range tests {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(tt.from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatalf("dial from %s: %v", tt.from, err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "ping\n")
		c.(*net.TCPConn).CloseWrite()
		got, _ := io.ReadAll(c)
		c.Close()
		if string(got) != tt.want {
			t.Errorf("from %s: got %q, want %q", tt.from, got, tt.want)
		}
	}
}

func TestServeBindsOnlyTheAddressInItsSubnet(t *testing.T) {
	tests := []struct {
		name    string
		subnet  string
		wantErr string
	}{
		{"loopback subnet: binds 127.0.0.1", "127.0.0.0/8", ""},
		{"subnet no interface has", "203.0.113.0/24", "no interface has an address in 203.0.113.0/24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			addr, err := waitForAddress(ctx, netip.MustParsePrefix(tt.subnet), 200*time.Millisecond)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !addr.IsLoopback() {
				t.Fatalf("address %v, %v; want a loopback address", addr, err)
			}
		})
	}
}
