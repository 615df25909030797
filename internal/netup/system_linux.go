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

	"github.com/zmonitor/firmware/internal/rtnl"
)

// netlinkLinks is Links over rtnetlink (internal/rtnl), one socket per call.
type netlinkLinks struct{}

// with opens a socket, finds the link's index and runs f.
func (netlinkLinks) with(name string, f func(c *rtnl.Conn, index int) error) error {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return fmt.Errorf("find link: %w", err)
	}
	c, err := rtnl.Dial()
	if err != nil {
		return err
	}
	defer c.Close()
	return f(c, ifc.Index)
}

func (n netlinkLinks) Up(name string) error {
	return n.with(name, func(c *rtnl.Conn, i int) error { return c.LinkUp(i) })
}

func (n netlinkLinks) SetAddr(name string, p netip.Prefix, lifetime time.Duration) error {
	if lifetime > 0 {
		// A little slack so the kernel does not drop the address while a
		// late renewal is still in flight.
		lifetime += 30 * time.Second
	}
	return n.with(name, func(c *rtnl.Conn, i int) error { return c.ReplaceAddr(i, p, lifetime) })
}

func (n netlinkLinks) DelAddr(name string, p netip.Prefix) error {
	return n.with(name, func(c *rtnl.Conn, i int) error { return c.DeleteAddr(i, p) })
}

func (n netlinkLinks) SetDefaultRoute(name string, gw netip.Addr) error {
	return n.with(name, func(c *rtnl.Conn, i int) error { return c.ReplaceDefaultRoute(i, gw) })
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
