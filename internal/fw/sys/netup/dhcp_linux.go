package netup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"golang.org/x/sys/unix"
)

// Errors of the nclient4 transport.
var (
	// ErrClosed: Close was called; no exchange starts any more.
	ErrClosed = errors.New("dhcp client closed")
	// ErrNoLease: Renew before a successful Request.
	ErrNoLease = errors.New("no lease to renew")
)

// nclientDHCP is DHCP over nclient4 on one interface. Request runs on
// nclient4's packet socket (the interface has no address yet); Renew, once
// the leased address is configured, on a kernel UDP socket bound to the
// interface and sending unicast to the lease's server (RFC 2131
// RENEWING). Each exchange opens its own nclient4 client and closes it,
// so no socket is open and no receive goroutine runs while the lease
// lasts. Request and Renew are called from one goroutine at a time; Close
// may be called at any time.
type nclientDHCP struct {
	iface string
	hw    net.HardwareAddr
	opts  []nclient4.ClientOpt
	lease *nclient4.Lease

	mu     sync.Mutex
	closed bool
	active *nclient4.Client // the exchange in progress
}

// newDHCP is DHCP over nclient4 on iface: each message is sent 3 times, the
// first wait being a third of the attempt's timeout (then doubling; the
// attempt's context ends the exchange first).
func newDHCP(iface string, timeout time.Duration) (*nclientDHCP, error) {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("find link: %w", err)
	}
	if len(ifc.HardwareAddr) != 6 {
		return nil, fmt.Errorf("%s has hardware address %q, not an Ethernet one", iface, ifc.HardwareAddr)
	}
	return &nclientDHCP{
		iface: iface,
		hw:    ifc.HardwareAddr,
		opts:  []nclient4.ClientOpt{nclient4.WithTimeout(timeout / 3), nclient4.WithRetry(3)},
	}, nil
}

// Request runs DISCOVER/OFFER/REQUEST/ACK from 0.0.0.0 to the link's
// broadcast address and returns the ACK (a NAK is an *nclient4.ErrNak).
func (d *nclientDHCP) Request(ctx context.Context) (*dhcpv4.DHCPv4, error) {
	c, err := d.open(func() (*nclient4.Client, error) {
		return nclient4.New(d.iface, append([]nclient4.ClientOpt{nclient4.WithHWAddr(d.hw)}, d.opts...)...)
	})
	if err != nil {
		return nil, fmt.Errorf("dhcp request: %w", err)
	}
	defer d.release(c)
	l, err := c.Request(ctx)
	if err != nil {
		return nil, fmt.Errorf("dhcp request: %w", d.closedOr(err))
	}
	d.lease = l
	return l.ACK, nil
}

// Renew sends the lease's server a REQUEST with the leased address as
// ciaddr, from a UDP socket on port 68 bound to the interface (the kernel
// routes, resolves and checksums), and returns the ACK. Bound to the
// wildcard address, the socket also receives servers that broadcast their
// replies (QEMU's user-mode network does).
func (d *nclientDHCP) Renew(ctx context.Context) (*dhcpv4.DHCPv4, error) {
	if d.lease == nil {
		return nil, fmt.Errorf("dhcp renew: %w", ErrNoLease)
	}
	server := d.lease.ACK.ServerIdentifier()
	if server == nil {
		server = d.lease.Offer.ServerIdentifier()
	}
	if server.To4() == nil || server.IsUnspecified() {
		return nil, fmt.Errorf("dhcp renew: the lease names no server (%v) to renew with", server)
	}
	xid, err := dhcpv4.GenerateTransactionID()
	if err != nil {
		return nil, fmt.Errorf("dhcp renew: %w", err)
	}
	c, err := d.open(func() (*nclient4.Client, error) {
		pc, err := listenUDP(ctx, d.iface)
		if err != nil {
			return nil, err
		}
		c, err := nclient4.NewWithConn(pc, d.hw, append([]nclient4.ClientOpt{
			nclient4.WithServerAddr(&net.UDPAddr{IP: server, Port: nclient4.ServerPort})}, d.opts...)...)
		if err != nil {
			pc.Close()
		}
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("dhcp renew: %w", err)
	}
	defer d.release(c)
	// A new exchange: not the ACK's transaction ID.
	l, err := c.Renew(ctx, d.lease, dhcpv4.WithTransactionID(xid))
	if err != nil {
		return nil, fmt.Errorf("dhcp renew: %w", d.closedOr(err))
	}
	d.lease = l
	return l.ACK, nil
}

// Close ends the exchange in progress, if any, and makes later calls fail
// with ErrClosed.
func (d *nclientDHCP) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.active != nil {
		return d.active.Close()
	}
	return nil
}

// open makes the client of one exchange, the one Close ends.
func (d *nclientDHCP) open(f func() (*nclient4.Client, error)) (*nclient4.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	c, err := f()
	if err != nil {
		return nil, err
	}
	d.active = c
	return c, nil
}

// release closes the exchange's client and its socket.
func (d *nclientDHCP) release(c *nclient4.Client) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.active == c {
		d.active = nil
	}
	_ = c.Close() // a second Close (after d.Close) does nothing
}

// closedOr is ErrClosed when Close ended the exchange, else err.
func (d *nclientDHCP) closedOr(err error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("%w (%v)", ErrClosed, err)
	}
	return err
}

// listenUDP opens 0.0.0.0:68 bound to iface (SO_BINDTODEVICE).
func listenUDP(ctx context.Context, iface string) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), iface) })
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(ctx, "udp4", ":"+strconv.Itoa(nclient4.ClientPort))
	if err != nil {
		return nil, fmt.Errorf("udp socket on %s: %w", iface, err)
	}
	return pc, nil
}

var _ DHCP = (*nclientDHCP)(nil)
