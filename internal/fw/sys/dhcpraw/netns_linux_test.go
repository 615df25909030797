package dhcpraw

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"

	"github.com/zmonitor/firmware/internal/testkit/netnstest"
)

// seen is what the test server received: message type and UDP source.
type seen struct {
	typ  dhcpv4.MessageType
	peer string
	ci   string
}

// testServer is a DHCP server (server4) offering 192.168.77.50/24; while
// silent it answers nothing.
type testServer struct {
	mu     sync.Mutex
	silent bool
	got    []seen
}

func (s *testServer) handle(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	s.mu.Lock()
	s.got = append(s.got, seen{m.MessageType(), peer.String(), m.ClientIPAddr.String()})
	silent := s.silent
	s.mu.Unlock()
	var typ dhcpv4.MessageType
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		typ = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		typ = dhcpv4.MessageTypeAck
	}
	if silent || typ == dhcpv4.MessageTypeNone {
		return
	}
	srv := net.IPv4(192, 168, 77, 1)
	r, err := dhcpv4.NewReplyFromRequest(m,
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithYourIP(net.IPv4(192, 168, 77, 50)),
		dhcpv4.WithServerIP(srv),
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(srv)),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(time.Hour)),
	)
	if err != nil {
		return
	}
	// Noise first: a reply to another transaction and a stray datagram.
	other := *r
	other.TransactionID[0]++
	dst := peer
	if u, ok := peer.(*net.UDPAddr); ok && u.IP.IsUnspecified() {
		dst = &net.UDPAddr{IP: net.IPv4bcast, Port: ClientPort}
	}
	_, _ = conn.WriteTo(other.ToBytes(), dst)
	_, _ = conn.WriteTo([]byte("not dhcp"), dst)
	_, _ = conn.WriteTo(r.ToBytes(), dst)
}

func (s *testServer) seen() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.got...)
}

func (s *testServer) setSilent(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.silent = v
	s.got = nil
}

func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// TestRealExchange runs Request (packet socket) and Renew (UDP unicast)
// against server4 over a veth pair between two private network namespaces,
// then a Request the server does not answer. The kernel checks both
// checksums of what the packet socket sends: a wrong one and server4
// never sees the DISCOVER. Root and iproute2 only.
func TestRealExchange(t *testing.T) {
	p := netnstest.New(t, "dr")
	srvNS, cliNS, srvIf, cliIf := p.ServerNS, p.ClientNS, p.ServerIf, p.ClientIf

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := &testServer{}
	ready := make(chan error, 1)
	go func() {
		_ = netnstest.In(srvNS, func() error {
			s, err := server4.NewServer(srvIf, nil, srv.handle)
			ready <- err
			if err != nil {
				return err
			}
			go func() { <-ctx.Done(); s.Close() }()
			return s.Serve()
		})
	}()
	if err := <-ready; err != nil {
		t.Fatalf("DHCP server: %v", err)
	}

	fds := openFDs(t)
	err := netnstest.In(cliNS, func() error {
		c, err := New(Config{Interface: cliIf, Timeout: 500 * time.Millisecond})
		if err != nil {
			return err
		}
		defer c.Close()
		ack, err := c.Request(ctx)
		if err != nil {
			return fmt.Errorf("Request: %w", err)
		}
		if !ack.YourIPAddr.Equal(net.IPv4(192, 168, 77, 50)) {
			return fmt.Errorf("Request: ACK for %v", ack.YourIPAddr)
		}
		if out, err := exec.Command("ip", "-n", cliNS, "addr", "add", "192.168.77.50/24", "dev", cliIf).CombinedOutput(); err != nil {
			return fmt.Errorf("ip addr add: %v %s", err, out)
		}
		srv.setSilent(false)
		if _, err := c.Renew(ctx); err != nil {
			return fmt.Errorf("Renew: %w", err)
		}
		got := srv.seen()
		if len(got) == 0 || got[0].typ != dhcpv4.MessageTypeRequest || got[0].peer != "192.168.77.50:68" || got[0].ci != "192.168.77.50" {
			return fmt.Errorf("Renew: server saw %+v, want a REQUEST from 192.168.77.50:68", got)
		}
		// A server that stays silent: each message goes out Tries times.
		srv.setSilent(true)
		c2, err := New(Config{Interface: cliIf, Timeout: 100 * time.Millisecond, Tries: 2})
		if err != nil {
			return err
		}
		defer c2.Close()
		if _, err := c2.Request(ctx); !errors.Is(err, ErrNoResponse) {
			return fmt.Errorf("Request to a silent server = %v, want ErrNoResponse", err)
		}
		if got := srv.seen(); len(got) != 2 || got[0].typ != dhcpv4.MessageTypeDiscover || got[1].typ != dhcpv4.MessageTypeDiscover {
			return fmt.Errorf("silent server saw %+v, want 2 DISCOVERs", got)
		}
		// The end of the context ends the wait at once.
		cctx, ccancel := context.WithCancel(ctx)
		ccancel()
		if _, err := c2.Request(cctx); !errors.Is(err, context.Canceled) {
			return fmt.Errorf("Request with an ended context = %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := openFDs(t); n != fds {
		t.Errorf("%d open files after the exchanges, %d before", n, fds)
	}
}
