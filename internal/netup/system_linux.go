package netup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
)

// netlinkLinks is Links over rtnetlink.
type netlinkLinks struct{}

func (netlinkLinks) link(name string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("find link: %w", err)
	}
	return l, nil
}

func (n netlinkLinks) Up(name string) error {
	l, err := n.link(name)
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(l)
}

func toIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func (n netlinkLinks) SetAddr(name string, p netip.Prefix, lifetime time.Duration) error {
	l, err := n.link(name)
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: toIPNet(p)}
	if s := int(lifetime / time.Second); s > 0 {
		// A little slack so the kernel does not drop the address while a
		// late renewal is still in flight.
		a.ValidLft, a.PreferedLft = s+30, s+30
	}
	return netlink.AddrReplace(l, a)
}

func (n netlinkLinks) DelAddr(name string, p netip.Prefix) error {
	l, err := n.link(name)
	if err != nil {
		return err
	}
	return netlink.AddrDel(l, &netlink.Addr{IPNet: toIPNet(p)})
}

func (n netlinkLinks) SetDefaultRoute(name string, gw netip.Addr) error {
	l, err := n.link(name)
	if err != nil {
		return err
	}
	return netlink.RouteReplace(&netlink.Route{
		LinkIndex: l.Attrs().Index,
		Dst:       &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)},
		Gw:        gw.AsSlice(),
	})
}

// nclient is DHCP over nclient4 (raw packet socket on the interface).
type nclient struct {
	c     *nclient4.Client
	lease *nclient4.Lease
}

func newNClient(iface string, timeout time.Duration) (*nclient, error) {
	// nclient4 resends each message 3 times within the per-send timeout.
	c, err := nclient4.New(iface, nclient4.WithTimeout(timeout/3), nclient4.WithRetry(3))
	if err != nil {
		return nil, err
	}
	return &nclient{c: c}, nil
}

func (n *nclient) Request(ctx context.Context) (*dhcpv4.DHCPv4, error) {
	l, err := n.c.Request(ctx)
	if err != nil {
		return nil, err
	}
	n.lease = l
	return l.ACK, nil
}

func (n *nclient) Renew(ctx context.Context) (*dhcpv4.DHCPv4, error) {
	if n.lease == nil {
		return nil, errors.New("renew: no lease")
	}
	l, err := n.c.Renew(ctx, n.lease)
	if err != nil {
		return nil, err
	}
	n.lease = l
	return l.ACK, nil
}

func (n *nclient) Close() error { return n.c.Close() }

var (
	_ Links = netlinkLinks{}
	_ DHCP  = (*nclient)(nil)
)
