package dhcpraw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/zmonitor/firmware/internal/base/clock"
)

// Defaults of Config.
const (
	// DefaultTimeout is the first retransmission timeout.
	DefaultTimeout = 2 * time.Second
	// DefaultTries is how many times a message is sent.
	DefaultTries = 3
	// maxMessage is the DHCP message size the client accepts (option 57),
	// as nclient4 announced it.
	maxMessage = 1500
)

// Errors of Request and Renew.
var (
	// ErrNoResponse: every send of a message timed out without a reply.
	ErrNoResponse = errors.New("no matching response")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("client closed")
	// ErrNoLease: Renew before a successful Request.
	ErrNoLease = errors.New("no lease to renew")
)

// Reasons a received DHCP message is not the reply an exchange waits for;
// the exchange ignores it and keeps listening.
var (
	ErrNotReply    = errors.New("not a BOOTREPLY")
	ErrXID         = errors.New("another transaction")
	ErrHWAddr      = errors.New("another client hardware address")
	ErrMessageType = errors.New("unexpected message type")
	ErrServer      = errors.New("another server")
	ErrOffer       = errors.New("offer without a usable address")
)

// NAKError is returned when the server refused the REQUEST.
type NAKError struct {
	// Server is the NAK's server identifier (nil when it had none).
	Server net.IP
	// Message is the server's text (option 56), possibly empty.
	Message string
}

func (e *NAKError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("server %v refused the request: %q", e.Server, e.Message)
	}
	return fmt.Sprintf("server %v refused the request", e.Server)
}

// Config says where and how patiently to run DHCP.
type Config struct {
	// Interface is the Ethernet interface (eth0).
	Interface string
	// Timeout is the first retransmission timeout; it doubles with each
	// send of the same message. 0 means DefaultTimeout.
	Timeout time.Duration
	// Tries is how many times a message is sent before giving up; 0
	// means DefaultTries.
	Tries int
	// Clock sets the retransmission deadlines; nil means the system clock.
	Clock clock.Clock
}

// conn is the socket of one exchange; the framing is its business.
type conn interface {
	// Send transmits one DHCP message.
	Send(msg []byte) error
	// Receive returns the next received DHCP payload, valid until the
	// next call. At the read deadline it returns an error wrapping
	// os.ErrDeadlineExceeded.
	Receive() ([]byte, error)
	SetReadDeadline(t time.Time) error
	Close() error
}

// Client is a DHCPv4 client on one interface. Request and Renew must not
// be called concurrently with each other; Close may be called at any time.
type Client struct {
	hw    net.HardwareAddr
	first time.Duration
	tries int
	clock clock.Clock
	// openBroadcast opens the interface's link-level socket; openUnicast
	// a UDP socket that sends to server:67 (broadcast when invalid).
	openBroadcast func() (conn, error)
	openUnicast   func(ctx context.Context, server netip.Addr) (conn, error)

	// The lease, kept for Renew.
	offer, ack *dhcpv4.DHCPv4

	mu     sync.Mutex
	closed bool
	active conn // the socket of the exchange in progress
}

func newClient(hw net.HardwareAddr, cfg Config) *Client {
	c := &Client{hw: slices.Clone(hw), first: cfg.Timeout, tries: cfg.Tries, clock: cfg.Clock}
	if c.first <= 0 {
		c.first = DefaultTimeout
	}
	if c.tries <= 0 {
		c.tries = DefaultTries
	}
	if c.clock == nil {
		c.clock = clock.System{}
	}
	return c
}

// Request runs DISCOVER -> OFFER -> REQUEST -> ACK over the link-level
// socket (the interface needs no address), taking the first OFFER and
// only the ACK or NAK of the offering server. It returns the ACK, or a
// *NAKError.
func (c *Client) Request(ctx context.Context) (*dhcpv4.DHCPv4, error) {
	cn, err := c.open(func() (conn, error) { return c.openBroadcast() })
	if err != nil {
		return nil, fmt.Errorf("dhcp request: %w", err)
	}
	defer c.release(cn)

	discover, err := dhcpv4.NewDiscovery(c.hw, dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(maxMessage)))
	if err != nil {
		return nil, fmt.Errorf("dhcp request: build DISCOVER: %w", err)
	}
	offer, err := c.exchange(ctx, cn, discover, want{
		xid: discover.TransactionID, hw: c.hw,
		types: []dhcpv4.MessageType{dhcpv4.MessageTypeOffer},
	})
	if err != nil {
		return nil, fmt.Errorf("dhcp request: %w", err)
	}
	req, err := dhcpv4.NewRequestFromOffer(offer, dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(maxMessage)))
	if err != nil {
		return nil, fmt.Errorf("dhcp request: build REQUEST: %w", err)
	}
	ack, err := c.exchange(ctx, cn, req, want{
		xid: req.TransactionID, hw: c.hw,
		types:  []dhcpv4.MessageType{dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak},
		server: offer.ServerIdentifier(),
	})
	if err != nil {
		return nil, fmt.Errorf("dhcp request: %w", err)
	}
	if ack.MessageType() == dhcpv4.MessageTypeNak {
		return nil, fmt.Errorf("dhcp request: %w", nak(ack))
	}
	c.offer, c.ack = offer, ack
	return ack, nil
}

// Renew sends the lease's server a REQUEST with the leased address as
// ciaddr (RFC 2131 RENEWING) from a UDP socket on the interface, and
// returns the ACK, or a *NAKError. The leased address must be configured.
func (c *Client) Renew(ctx context.Context) (*dhcpv4.DHCPv4, error) {
	if c.ack == nil {
		return nil, fmt.Errorf("dhcp renew: %w", ErrNoLease)
	}
	server := c.ack.ServerIdentifier()
	if server == nil {
		server = c.offer.ServerIdentifier()
	}
	to, _ := netip.AddrFromSlice(server)
	cn, err := c.open(func() (conn, error) { return c.openUnicast(ctx, to.Unmap()) })
	if err != nil {
		return nil, fmt.Errorf("dhcp renew: %w", err)
	}
	defer c.release(cn)

	xid, err := dhcpv4.GenerateTransactionID()
	if err != nil {
		return nil, fmt.Errorf("dhcp renew: %w", err)
	}
	req, err := dhcpv4.NewRenewFromAck(c.ack,
		dhcpv4.WithTransactionID(xid), // a new exchange, not the ACK's
		dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(maxMessage)))
	if err != nil {
		return nil, fmt.Errorf("dhcp renew: build REQUEST: %w", err)
	}
	ack, err := c.exchange(ctx, cn, req, want{
		xid: xid, hw: c.hw,
		types:  []dhcpv4.MessageType{dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak},
		server: server,
	})
	if err != nil {
		return nil, fmt.Errorf("dhcp renew: %w", err)
	}
	if ack.MessageType() == dhcpv4.MessageTypeNak {
		return nil, fmt.Errorf("dhcp renew: %w", nak(ack))
	}
	c.ack = ack
	return ack, nil
}

// Close ends the exchange in progress, if any (it returns ErrClosed), and
// makes later calls fail with ErrClosed. The client holds no socket
// between exchanges.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.active != nil {
		return c.active.Close()
	}
	return nil
}

// open opens the exchange's socket and makes it the one Close ends.
func (c *Client) open(f func() (conn, error)) (conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	cn, err := f()
	if err != nil {
		return nil, err
	}
	c.active = cn
	return cn, nil
}

// release closes the exchange's socket.
func (c *Client) release(cn conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active == cn {
		c.active = nil
	}
	if !c.closed { // Close closed it already
		_ = cn.Close()
	}
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func nak(m *dhcpv4.DHCPv4) *NAKError {
	return &NAKError{Server: m.ServerIdentifier(), Message: m.Message()}
}

// exchange sends msg and returns the first received message w accepts,
// sending msg again (up to c.tries times) when a timeout passes without
// one; the timeout starts at c.first and doubles. It ends early when ctx
// does.
func (c *Client) exchange(ctx context.Context, cn conn, msg *dhcpv4.DHCPv4, w want) (*dhcpv4.DHCPv4, error) {
	name := msg.MessageType().String()
	dl := watch(ctx, cn)
	defer dl.stop()
	out := msg.ToBytes()
	timeout := c.first
	for range c.tries {
		if err := cn.Send(out); err != nil {
			if c.isClosed() {
				return nil, ErrClosed
			}
			return nil, fmt.Errorf("send %s: %w", name, err)
		}
		if err := dl.set(c.clock.Now().Add(timeout)); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("wait for the reply to %s: %w", name, ctx.Err())
			}
			return nil, fmt.Errorf("wait for the reply to %s: %w", name, err)
		}
		for {
			b, err := cn.Receive()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if ctx.Err() != nil {
					return nil, fmt.Errorf("wait for the reply to %s: %w", name, ctx.Err())
				}
				break // retransmit
			}
			if err != nil {
				if c.isClosed() {
					return nil, ErrClosed
				}
				return nil, fmt.Errorf("receive the reply to %s: %w", name, err)
			}
			if m, err := w.match(b); err == nil {
				return m, nil
			}
		}
		timeout *= 2
	}
	return nil, fmt.Errorf("%s sent %d times: %w", name, c.tries, ErrNoResponse)
}

// want says which replies an exchange takes.
type want struct {
	xid   dhcpv4.TransactionID
	hw    net.HardwareAddr
	types []dhcpv4.MessageType
	// server, when not nil, must be the reply's server identifier.
	server net.IP
}

// match decodes b and returns it when it is the wanted reply.
func (w want) match(b []byte) (*dhcpv4.DHCPv4, error) {
	m, err := dhcpv4.FromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if m.OpCode != dhcpv4.OpcodeBootReply {
		return nil, fmt.Errorf("opcode %v: %w", m.OpCode, ErrNotReply)
	}
	if m.TransactionID != w.xid {
		return nil, fmt.Errorf("xid %v: %w", m.TransactionID, ErrXID)
	}
	if !bytes.Equal(m.ClientHWAddr, w.hw) {
		return nil, fmt.Errorf("chaddr %v: %w", m.ClientHWAddr, ErrHWAddr)
	}
	t := m.MessageType()
	if !slices.Contains(w.types, t) {
		return nil, fmt.Errorf("%v: %w", t, ErrMessageType)
	}
	if w.server != nil && !m.ServerIdentifier().Equal(w.server) {
		return nil, fmt.Errorf("server identifier %v: %w", m.ServerIdentifier(), ErrServer)
	}
	if t == dhcpv4.MessageTypeOffer {
		if a, ok := netip.AddrFromSlice(m.YourIPAddr); !ok || !a.Unmap().Is4() || a.Unmap().IsUnspecified() {
			return nil, fmt.Errorf("yiaddr %v: %w", m.YourIPAddr, ErrOffer)
		}
	}
	return m, nil
}

// deadline sets a conn's read deadline so that the end of a context
// always wins: once ctx is done the deadline stays in the past.
type deadline struct {
	mu    sync.Mutex
	cn    conn
	ended bool
	stopf func() bool
}

func watch(ctx context.Context, cn conn) *deadline {
	d := &deadline{cn: cn}
	d.stopf = context.AfterFunc(ctx, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.ended = true
		_ = cn.SetReadDeadline(time.Unix(1, 0)) // passed
	})
	return d
}

// set sets the read deadline to t unless the context is done.
func (d *deadline) set(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ended {
		return os.ErrDeadlineExceeded
	}
	return d.cn.SetReadDeadline(t)
}

func (d *deadline) stop() { d.stopf() }
