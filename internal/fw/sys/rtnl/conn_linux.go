package rtnl

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// Conn is a NETLINK_ROUTE socket. It is not safe for concurrent use.
type Conn struct {
	fd  int
	seq uint32
}

// Timeout bounds the wait for each acknowledgement.
const Timeout = 5 * time.Second

// Dial opens a NETLINK_ROUTE socket.
func Dial() (*Conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("rtnetlink socket: %w", err)
	}
	tv := unix.NsecToTimeval(Timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("rtnetlink socket timeout: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("rtnetlink bind: %w", err)
	}
	return &Conn{fd: fd, seq: uint32(time.Now().UnixNano())}, nil
}

// Close closes the socket.
func (c *Conn) Close() error { return unix.Close(c.fd) }

// do sends m and waits for its acknowledgement.
func (c *Conn) do(what string, m *message, seq uint32) error {
	if err := unix.Sendto(c.fd, m.bytes(), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("%s: send: %w", what, err)
	}
	buf := make([]byte, 8192)
	for {
		n, from, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) {
				return fmt.Errorf("%s: no answer from the kernel within %v", what, Timeout)
			}
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("%s: receive: %w", what, err)
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue // not from the kernel
		}
		err = parseAck(buf[:n], seq)
		if errors.Is(err, errNoAck) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
}

func (c *Conn) next() uint32 {
	c.seq++
	return c.seq
}

// LinkUp sets the link with this index administratively up.
func (c *Conn) LinkUp(index int) error {
	seq := c.next()
	m := newMessage(unix.RTM_NEWLINK, 0, seq, linkBody(index, unix.IFF_UP, unix.IFF_UP))
	return c.do("link up", m, seq)
}

// ReplaceAddr adds the IPv4 address p to the link, or refreshes it, valid
// for lifetime (0: forever).
func (c *Conn) ReplaceAddr(index int, p netip.Prefix, lifetime time.Duration) error {
	if !p.Addr().Is4() {
		return fmt.Errorf("add address %s: not IPv4", p)
	}
	seq := c.next()
	m := newMessage(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, seq, addrBody(index, p))
	a := p.Addr().As4()
	m.attr(unix.IFA_LOCAL, a[:])
	m.attr(unix.IFA_ADDRESS, a[:])
	if bc, ok := broadcast(p); ok {
		b := bc.As4()
		m.attr(unix.IFA_BROADCAST, b[:])
	}
	if s := lifetime / time.Second; s > 0 {
		// struct ifa_cacheinfo: preferred, valid, cstamp, tstamp.
		ci := make([]byte, unix.SizeofIfaCacheinfo)
		ne.PutUint32(ci[0:], uint32(min(s, 0xfffffffe)))
		ne.PutUint32(ci[4:], uint32(min(s, 0xfffffffe)))
		m.attr(unix.IFA_CACHEINFO, ci)
	}
	return c.do("add address "+p.String(), m, seq)
}

// DeleteAddr removes the IPv4 address p from the link.
func (c *Conn) DeleteAddr(index int, p netip.Prefix) error {
	if !p.Addr().Is4() {
		return fmt.Errorf("delete address %s: not IPv4", p)
	}
	seq := c.next()
	m := newMessage(unix.RTM_DELADDR, 0, seq, addrBody(index, p))
	a := p.Addr().As4()
	m.attr(unix.IFA_LOCAL, a[:])
	m.attr(unix.IFA_ADDRESS, a[:])
	return c.do("delete address "+p.String(), m, seq)
}

// ReplaceDefaultRoute makes gw, through the link, the IPv4 default route.
func (c *Conn) ReplaceDefaultRoute(index int, gw netip.Addr) error {
	if !gw.Is4() {
		return fmt.Errorf("default route via %s: not IPv4", gw)
	}
	seq := c.next()
	m := newMessage(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, seq, routeBody())
	g := gw.As4()
	m.attr(unix.RTA_GATEWAY, g[:])
	m.attrU32(unix.RTA_OIF, uint32(index))
	return c.do("default route via "+gw.String(), m, seq)
}
