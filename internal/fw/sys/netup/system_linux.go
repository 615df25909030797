package netup

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/zmonitor/firmware/internal/fw/sys/rtnl"
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

var _ Links = netlinkLinks{}
