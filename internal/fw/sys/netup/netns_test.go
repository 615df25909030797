package netup

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netlink"

	"github.com/zmonitor/firmware/internal/testkit/netnstest"
)

// TestUpRealDHCP runs the real rtnetlink + dhcpraw path against an
// in-process DHCP server (server4) over a veth pair between two private
// network namespaces; nothing touches the host's own namespace. It needs
// root and iproute2.
func TestUpRealDHCP(t *testing.T) {
	p := netnstest.New(t, "zm")
	srvNS, cliNS, srvIf, cliIf := p.ServerNS, p.ClientNS, p.ServerIf, p.ClientIf
	// Up must bring the client's link up itself.
	if out, err := exec.Command("ip", "-n", cliNS, "link", "set", cliIf, "down").CombinedOutput(); err != nil {
		t.Fatalf("ip link set down: %v %s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	srvErr := make(chan error, 1)
	go func() {
		_ = netnstest.In(srvNS, func() error {
			s, err := server4.NewServer(srvIf, nil, dhcpHandler)
			srvErr <- err
			if err != nil {
				return err
			}
			go func() { <-ctx.Done(); s.Close() }()
			return s.Serve()
		})
	}()
	if err := <-srvErr; err != nil {
		t.Fatalf("DHCP server: %v", err)
	}

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
		r.err = netnstest.In(cliNS, func() error {
			var err error
			r.l, err = Up(upCtx, Config{Interface: cliIf, ResolvConf: resolv, AttemptTimeout: 3 * time.Second})
			if err != nil {
				return err
			}
			link, err := netlink.LinkByName(cliIf)
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
		t.Errorf("address not on %s: %v", cliIf, r.addrs)
	}
	if r.route == nil || !r.route.Gw.Equal(net.ParseIP("192.168.77.1")) {
		t.Errorf("default route %v", r.route)
	}
	if rc, err := os.ReadFile(resolv); err != nil || !strings.Contains(string(rc), "nameserver 192.168.77.1\n") {
		t.Errorf("resolv.conf %q %v", rc, err)
	}
}

// dhcpHandler offers and acknowledges 192.168.77.50/24 to anyone.
func dhcpHandler(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	var typ dhcpv4.MessageType
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		typ = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		typ = dhcpv4.MessageTypeAck
	default:
		return
	}
	srv := net.ParseIP("192.168.77.1")
	reply, err := dhcpv4.NewReplyFromRequest(m,
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithYourIP(net.ParseIP("192.168.77.50")),
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
	dst := peer
	if u, ok := peer.(*net.UDPAddr); ok && u.IP.IsUnspecified() {
		dst = &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
	}
	_, _ = conn.WriteTo(reply.ToBytes(), dst)
}
