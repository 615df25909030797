package netup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netlink"

	"github.com/zmonitor/firmware/internal/testkit/netnstest"
)

// seen is what the test server received: message type, UDP source (server4
// names a client without an address 255.255.255.255:68) and ciaddr.
type seen struct {
	typ  dhcpv4.MessageType
	peer string
	ci   string
}

// testServer is a DHCP server (server4) offering 192.168.77.50/24 with
// 192.168.77.1 as router and DNS server. Before each answer it sends noise:
// a reply to another transaction and a datagram that is not DHCP. While
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
		dhcpv4.WithRouter(srv),
		dhcpv4.WithDNS(srv),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(srv)),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(time.Hour)),
	)
	if err != nil {
		return
	}
	other := *r
	other.TransactionID[0]++
	dst := peer
	if u, ok := peer.(*net.UDPAddr); ok && u.IP.IsUnspecified() {
		dst = &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
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

// exchanges is seen with retransmissions folded: a message the client sent
// again because the answer was slow (a loaded machine) counts once, so the
// checks below hold whatever the timing.
func (s *testServer) exchanges() []seen {
	var out []seen
	for _, m := range s.seen() {
		if len(out) == 0 || out[len(out)-1] != m {
			out = append(out, m)
		}
	}
	return out
}

func (s *testServer) reset(silent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.silent = silent
	s.got = nil
}

// serve runs srv on the server side of p until ctx ends, on 0.0.0.0:67.
func serve(ctx context.Context, t *testing.T, p netnstest.Pair, srv *testServer) {
	t.Helper()
	serveOn(ctx, t, p, srv, nil)
}

// serveOn is serve on addr (nil: 0.0.0.0:67). A server on the server's own
// address gets only what is sent to that address: the kernel gives a
// unicast datagram to the socket bound to its address, a broadcast to the
// one bound to 0.0.0.0.
func serveOn(ctx context.Context, t *testing.T, p netnstest.Pair, srv *testServer, addr *net.UDPAddr) {
	t.Helper()
	ready := make(chan error, 1)
	go func() {
		_ = netnstest.In(p.ServerNS, func() error {
			s, err := server4.NewServer(p.ServerIf, addr, srv.handle)
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
}

func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// TestUpRealDHCP runs the real rtnetlink + nclient4 path against an
// in-process DHCP server (server4) over a veth pair between two private
// network namespaces; nothing touches the host's own namespace. It needs
// root and iproute2.
func TestUpRealDHCP(t *testing.T) {
	p := netnstest.New(t, "zm")
	// Up must bring the client's link up itself.
	if out, err := exec.Command("ip", "-n", p.ClientNS, "link", "set", p.ClientIf, "down").CombinedOutput(); err != nil {
		t.Fatalf("ip link set down: %v %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	serve(ctx, t, p, &testServer{})

	type result struct {
		l     Lease
		err   error
		addrs []netlink.Addr
		route *netlink.Route
	}
	res := make(chan result, 1)
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	upCtx, upCancel := context.WithCancel(ctx)
	defer upCancel() // ends the renewal goroutine long before T1
	go func() {
		var r result
		defer func() { res <- r }()
		r.err = netnstest.In(p.ClientNS, func() error {
			var err error
			r.l, err = Up(upCtx, Config{Interface: p.ClientIf, ResolvConf: resolv, AttemptTimeout: 3 * time.Second})
			if err != nil {
				return err
			}
			link, err := netlink.LinkByName(p.ClientIf)
			if err != nil {
				return err
			}
			r.addrs, _ = netlink.AddrList(link, netlink.FAMILY_V4)
			routes, _ := netlink.RouteList(link, netlink.FAMILY_V4)
			for i := range routes {
				if routes[i].Dst == nil || routes[i].Dst.IP.IsUnspecified() {
					r.route = &routes[i]
				}
			}
			return nil
		})
	}()
	r := <-res
	if r.err != nil {
		t.Fatalf("Up: %v", r.err)
	}
	if r.l.Address != netip.MustParsePrefix("192.168.77.50/24") || r.l.Router != netip.MustParseAddr("192.168.77.1") {
		t.Errorf("lease %v", r.l)
	}
	found := false
	for _, a := range r.addrs {
		if a.IPNet.String() == "192.168.77.50/24" {
			found = true
		}
	}
	if !found {
		t.Errorf("address not on %s: %v", p.ClientIf, r.addrs)
	}
	if r.route == nil || !r.route.Gw.Equal(net.ParseIP("192.168.77.1")) {
		t.Errorf("default route %v", r.route)
	}
	if rc, err := os.ReadFile(resolv); err != nil || !strings.Contains(string(rc), "nameserver 192.168.77.1\n") {
		t.Errorf("resolv.conf %q %v", rc, err)
	}
}

// TestNClientExchange runs the firmware's nclient4 transport against
// server4 over a veth pair between two private network namespaces:
// Request through the packet socket past noise (broadcast), Renew unicast
// from the leased address to the lease's server, a silent server that gets
// each message 3 times, an ended context, Close during an exchange, and no
// file left open. Root and iproute2 only.
func TestNClientExchange(t *testing.T) {
	p := netnstest.New(t, "nc")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := &testServer{}
	serve(ctx, t, p, srv)
	// The same server on 192.168.77.1:67 sees only unicast: the Renew.
	uni := &testServer{}
	serveOn(ctx, t, p, uni, &net.UDPAddr{IP: net.IPv4(192, 168, 77, 1), Port: dhcpv4.ServerPort})

	fds := openFDs(t)
	err := netnstest.In(p.ClientNS, func() error {
		d, err := newDHCP(p.ClientIf, 1500*time.Millisecond)
		if err != nil {
			return err
		}
		defer d.Close()
		if _, err := d.Renew(ctx); !errors.Is(err, ErrNoLease) {
			return fmt.Errorf("Renew before Request = %v, want ErrNoLease", err)
		}
		ack, err := d.Request(ctx)
		if err != nil {
			return fmt.Errorf("Request: %w", err)
		}
		if !ack.YourIPAddr.Equal(net.IPv4(192, 168, 77, 50)) {
			return fmt.Errorf("Request: ACK for %v", ack.YourIPAddr)
		}
		if got := srv.exchanges(); len(got) != 2 || got[0].typ != dhcpv4.MessageTypeDiscover || got[1].typ != dhcpv4.MessageTypeRequest || got[0].ci != "0.0.0.0" {
			return fmt.Errorf("Request: server saw %+v, want DISCOVER and REQUEST without an address", got)
		}
		if got := uni.seen(); len(got) != 0 {
			return fmt.Errorf("Request: unicast to the server %+v, want broadcasts only", got)
		}
		if out, err := exec.Command("ip", "-n", p.ClientNS, "addr", "add", "192.168.77.50/24", "dev", p.ClientIf).CombinedOutput(); err != nil {
			return fmt.Errorf("ip addr add: %v %s", err, out)
		}
		srv.reset(false)
		uni.reset(false)
		ack, err = d.Renew(ctx)
		if err != nil {
			return fmt.Errorf("Renew: %w", err)
		}
		if ack.MessageType() != dhcpv4.MessageTypeAck {
			return fmt.Errorf("Renew: %v", ack.MessageType())
		}
		got := uni.exchanges()
		if len(got) != 1 || got[0].typ != dhcpv4.MessageTypeRequest || got[0].peer != "192.168.77.50:68" || got[0].ci != "192.168.77.50" {
			return fmt.Errorf("Renew: server saw %+v unicast, want one REQUEST from 192.168.77.50:68", got)
		}
		if got := srv.seen(); len(got) != 0 {
			return fmt.Errorf("Renew: broadcast %+v, want unicast to the lease's server only", got)
		}

		// A server that stays silent: each message goes out 3 times.
		srv.reset(true)
		d2, err := newDHCP(p.ClientIf, 300*time.Millisecond)
		if err != nil {
			return err
		}
		defer d2.Close()
		if _, err := d2.Request(ctx); err == nil || !strings.Contains(err.Error(), "no matching response") {
			return fmt.Errorf("Request to a silent server = %v, want no response", err)
		}
		if got := srv.seen(); len(got) != 3 || got[0].typ != dhcpv4.MessageTypeDiscover || got[2].typ != dhcpv4.MessageTypeDiscover {
			return fmt.Errorf("silent server saw %+v, want 3 DISCOVERs", got)
		}
		// The end of the context ends the wait at once.
		cctx, ccancel := context.WithCancel(ctx)
		ccancel()
		if _, err := d2.Request(cctx); !errors.Is(err, context.Canceled) {
			return fmt.Errorf("Request with an ended context = %v", err)
		}
		// Close ends an exchange in progress, and every later one.
		d3, err := newDHCP(p.ClientIf, time.Hour)
		if err != nil {
			return err
		}
		done := make(chan error, 1)
		srv.reset(true)
		go func() { // on a thread of its own, in the client's namespace
			done <- netnstest.In(p.ClientNS, func() error { _, err := d3.Request(ctx); return err })
		}()
		for len(srv.seen()) == 0 { // the DISCOVER is out: the exchange is waiting
			select {
			case err := <-done:
				return fmt.Errorf("Request ended before Close: %v", err)
			case <-ctx.Done():
				return ctx.Err()
			default:
			}
		}
		if err := d3.Close(); err != nil {
			return fmt.Errorf("Close: %v", err)
		}
		if err := <-done; !errors.Is(err, ErrClosed) {
			return fmt.Errorf("Request ended by Close = %v, want ErrClosed", err)
		}
		if _, err := d3.Request(ctx); !errors.Is(err, ErrClosed) {
			return fmt.Errorf("Request after Close = %v, want ErrClosed", err)
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

// BenchmarkNClientRequest times one DISCOVER/OFFER/REQUEST/ACK exchange of
// the firmware's transport (client made, exchange, client closed) against
// server4 over a veth pair between two network namespaces; the server sends
// its noise (another transaction's reply, a datagram that is not DHCP) before
// each answer, as in TestNClientExchange. Root only.
func BenchmarkNClientRequest(b *testing.B) {
	p := netnstest.New(b, "nb")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan error, 1)
	go func() {
		_ = netnstest.In(p.ServerNS, func() error {
			s, err := server4.NewServer(p.ServerIf, nil, (&testServer{}).handle)
			ready <- err
			if err != nil {
				return err
			}
			go func() { <-ctx.Done(); s.Close() }()
			return s.Serve()
		})
	}()
	if err := <-ready; err != nil {
		b.Fatal(err)
	}
	err := netnstest.In(p.ClientNS, func() error {
		b.ResetTimer()
		for b.Loop() {
			d, err := newDHCP(p.ClientIf, 3*time.Second)
			if err != nil {
				return err
			}
			if _, err := d.Request(ctx); err != nil {
				return err
			}
			d.Close()
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
