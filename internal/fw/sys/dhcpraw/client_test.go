package dhcpraw

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
)

func testHW() net.HardwareAddr { return net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01} }

// answer builds the server's reply of type typ to m.
func answer(t testing.TB, m *dhcpv4.DHCPv4, typ dhcpv4.MessageType, server string, mods ...dhcpv4.Modifier) []byte {
	t.Helper()
	srv := net.ParseIP(server).To4()
	r, err := dhcpv4.NewReplyFromRequest(m, append([]dhcpv4.Modifier{
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithYourIP(net.IPv4(192, 168, 77, 50)),
		dhcpv4.WithServerIP(srv),
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(srv)),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(time.Hour)),
	}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r.ToBytes()
}

// offerBytes is an OFFER to a DISCOVER of testHW (a fuzz seed).
func offerBytes(t testing.TB) []byte {
	d, err := dhcpv4.NewDiscovery(testHW())
	if err != nil {
		t.Fatal(err)
	}
	return answer(t, d, dhcpv4.MessageTypeOffer, "192.168.77.1")
}

// fakeConn is a scripted socket: each Send asks respond for the packets
// that then arrive; when none is left, Receive reports the read deadline
// (moving the fake clock to it) unless onEmpty says otherwise.
type fakeConn struct {
	t       *testing.T
	clk     *clocktest.Fake
	respond func(m *dhcpv4.DHCPv4) [][]byte
	onEmpty func() ([]byte, error)

	mu        sync.Mutex
	sent      []*dhcpv4.DHCPv4
	deadlines []time.Duration // after the fake clock's start
	deadline  time.Time
	queue     [][]byte
	closes    int
	passed    chan struct{} // closed when the deadline is set in the past
}

func newFakeConn(t *testing.T, clk *clocktest.Fake, respond func(m *dhcpv4.DHCPv4) [][]byte) *fakeConn {
	return &fakeConn{t: t, clk: clk, respond: respond, passed: make(chan struct{})}
}

var start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (f *fakeConn) Send(b []byte) error {
	m, err := dhcpv4.FromBytes(b)
	if err != nil {
		f.t.Errorf("sent an undecodable message: %v", err)
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closes > 0 {
		return os.ErrClosed
	}
	f.sent = append(f.sent, m)
	if f.respond != nil {
		f.queue = append(f.queue, f.respond(m)...)
	}
	return nil
}

func (f *fakeConn) Receive() ([]byte, error) {
	f.mu.Lock()
	if f.closes > 0 {
		f.mu.Unlock()
		return nil, os.ErrClosed
	}
	if len(f.queue) > 0 {
		b := f.queue[0]
		f.queue = f.queue[1:]
		f.mu.Unlock()
		return b, nil
	}
	onEmpty, d := f.onEmpty, f.deadline
	f.mu.Unlock()
	if onEmpty != nil {
		return onEmpty()
	}
	if d.After(f.clk.Now()) {
		f.clk.Advance(d.Sub(f.clk.Now()))
	}
	return nil, os.ErrDeadlineExceeded
}

func (f *fakeConn) SetReadDeadline(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deadline = t
	if t.Before(start) {
		select {
		case <-f.passed:
		default:
			close(f.passed)
		}
		return nil
	}
	f.deadlines = append(f.deadlines, t.Sub(start))
	return nil
}

func (f *fakeConn) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closes++
	return nil
}

func (f *fakeConn) state() ([]*dhcpv4.DHCPv4, []time.Duration, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent, f.deadlines, f.closes
}

// testClient is a client whose sockets are fc (broadcast) and uc (unicast;
// the server it was opened for goes to *unicastTo).
func testClient(clk *clocktest.Fake, fc, uc *fakeConn, unicastTo *netip.Addr) *Client {
	c := newClient(testHW(), Config{Interface: "eth0", Timeout: time.Second, Clock: clk})
	c.openBroadcast = func() (conn, error) { return fc, nil }
	c.openUnicast = func(_ context.Context, s netip.Addr) (conn, error) {
		if unicastTo != nil {
			*unicastTo = s
		}
		return uc, nil
	}
	return c
}

// server answers like a DHCP server at 192.168.77.1, after noise: garbage,
// a reply to another transaction, to another client, and — to the REQUEST
// — an ACK from another server.
func server(t *testing.T, final dhcpv4.MessageType) func(m *dhcpv4.DHCPv4) [][]byte {
	return func(m *dhcpv4.DHCPv4) [][]byte {
		other := *m
		other.TransactionID[0]++
		stranger := *m
		stranger.ClientHWAddr = net.HardwareAddr{2, 0, 0, 0, 0, 2}
		noise := [][]byte{
			[]byte("garbage"),
			m.ToBytes(), // our own BOOTREQUEST
			answer(t, &other, dhcpv4.MessageTypeOffer, "192.168.77.1"),
			answer(t, &stranger, dhcpv4.MessageTypeOffer, "192.168.77.1"),
		}
		switch m.MessageType() {
		case dhcpv4.MessageTypeDiscover:
			return append(noise,
				answer(t, m, dhcpv4.MessageTypeOffer, "192.168.77.1"),
				answer(t, m, dhcpv4.MessageTypeOffer, "192.168.77.9")) // a later offer: not taken
		case dhcpv4.MessageTypeRequest:
			return append(noise,
				answer(t, m, dhcpv4.MessageTypeAck, "192.168.77.9"),
				answer(t, m, final, "192.168.77.1", dhcpv4.WithOption(dhcpv4.OptMessage("no"))))
		}
		return nil
	}
}

func TestRequest(t *testing.T) {
	clk := clocktest.New(start)
	fc := newFakeConn(t, clk, server(t, dhcpv4.MessageTypeAck))
	c := testClient(clk, fc, nil, nil)
	ack, err := c.Request(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ack.MessageType() != dhcpv4.MessageTypeAck || !ack.ServerIdentifier().Equal(net.IPv4(192, 168, 77, 1)) {
		t.Fatalf("ACK %v", ack)
	}
	sent, deadlines, closes := fc.state()
	if len(sent) != 2 || sent[0].MessageType() != dhcpv4.MessageTypeDiscover || sent[1].MessageType() != dhcpv4.MessageTypeRequest {
		t.Fatalf("sent %v", sent)
	}
	req := sent[1]
	if !req.RequestedIPAddress().Equal(net.IPv4(192, 168, 77, 50)) || !req.ServerIdentifier().Equal(net.IPv4(192, 168, 77, 1)) {
		t.Errorf("REQUEST asks %v from %v, want the first offer's", req.RequestedIPAddress(), req.ServerIdentifier())
	}
	if req.TransactionID != sent[0].TransactionID || !req.Options.Has(dhcpv4.OptionMaximumDHCPMessageSize) {
		t.Errorf("REQUEST xid %v (DISCOVER %v)", req.TransactionID, sent[0].TransactionID)
	}
	if len(deadlines) != 2 || deadlines[0] != time.Second || deadlines[1] != time.Second {
		t.Errorf("deadlines %v, want 1s after each send", deadlines)
	}
	if closes != 1 {
		t.Errorf("socket closed %d times", closes)
	}
}

func TestRequestNAK(t *testing.T) {
	clk := clocktest.New(start)
	fc := newFakeConn(t, clk, server(t, dhcpv4.MessageTypeNak))
	c := testClient(clk, fc, nil, nil)
	_, err := c.Request(context.Background())
	var nak *NAKError
	if !errors.As(err, &nak) || nak.Message != "no" || !nak.Server.Equal(net.IPv4(192, 168, 77, 1)) {
		t.Fatalf("Request = %v, want the NAK of 192.168.77.1", err)
	}
	if _, err := c.Renew(context.Background()); !errors.Is(err, ErrNoLease) {
		t.Fatalf("Renew after a NAK = %v, want ErrNoLease", err)
	}
	if _, _, closes := fc.state(); closes != 1 {
		t.Errorf("socket closed %d times", closes)
	}
}

// TestRequestRetransmits: without an answer a message goes out Tries
// times, waiting 1 s, 2 s, 4 s.
func TestRequestRetransmits(t *testing.T) {
	clk := clocktest.New(start)
	fc := newFakeConn(t, clk, nil)
	c := testClient(clk, fc, nil, nil)
	_, err := c.Request(context.Background())
	if !errors.Is(err, ErrNoResponse) {
		t.Fatalf("Request = %v, want ErrNoResponse", err)
	}
	sent, deadlines, closes := fc.state()
	if len(sent) != 3 {
		t.Fatalf("sent %d DISCOVERs, want 3", len(sent))
	}
	for _, m := range sent {
		if m.TransactionID != sent[0].TransactionID || m.MessageType() != dhcpv4.MessageTypeDiscover {
			t.Errorf("retransmission %v", m)
		}
	}
	want := []time.Duration{time.Second, 3 * time.Second, 7 * time.Second}
	if len(deadlines) != 3 || deadlines[0] != want[0] || deadlines[1] != want[1] || deadlines[2] != want[2] {
		t.Errorf("deadlines %v, want %v", deadlines, want)
	}
	if closes != 1 {
		t.Errorf("socket closed %d times", closes)
	}
}

// TestRequestCanceled: the end of the context ends the wait (the read
// deadline is moved into the past) and the socket is closed.
func TestRequestCanceled(t *testing.T) {
	clk := clocktest.New(start)
	fc := newFakeConn(t, clk, nil)
	ctx, cancel := context.WithCancel(context.Background())
	fc.onEmpty = func() ([]byte, error) {
		cancel()
		<-fc.passed
		return nil, os.ErrDeadlineExceeded
	}
	c := testClient(clk, fc, nil, nil)
	_, err := c.Request(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Request = %v, want context.Canceled", err)
	}
	if sent, _, closes := fc.state(); len(sent) != 1 || closes != 1 {
		t.Errorf("sent %d, closed %d times", len(sent), closes)
	}
	// A context that has already ended sends once and returns at once.
	fc2 := newFakeConn(t, clk, nil)
	fc2.onEmpty = func() ([]byte, error) { <-fc2.passed; return nil, os.ErrDeadlineExceeded }
	c2 := testClient(clk, fc2, nil, nil)
	if _, err := c2.Request(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Request = %v, want context.Canceled", err)
	}
}

// TestClose: Close ends the exchange in progress and later calls.
func TestClose(t *testing.T) {
	clk := clocktest.New(start)
	fc := newFakeConn(t, clk, nil)
	c := testClient(clk, fc, nil, nil)
	fc.onEmpty = func() ([]byte, error) {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
		return fc.Receive()
	}
	if _, err := c.Request(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Request = %v, want ErrClosed", err)
	}
	if _, _, closes := fc.state(); closes != 1 {
		t.Errorf("socket closed %d times", closes)
	}
	if _, err := c.Request(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Request after Close = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestRenew(t *testing.T) {
	clk := clocktest.New(start)
	fc := newFakeConn(t, clk, server(t, dhcpv4.MessageTypeAck))
	uc := newFakeConn(t, clk, server(t, dhcpv4.MessageTypeAck))
	var to netip.Addr
	c := testClient(clk, fc, uc, &to)
	if _, err := c.Renew(context.Background()); !errors.Is(err, ErrNoLease) {
		t.Fatalf("Renew before Request = %v, want ErrNoLease", err)
	}
	first, err := c.Request(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ack, err := c.Renew(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ack.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("renew ACK %v", ack)
	}
	if to != netip.MustParseAddr("192.168.77.1") {
		t.Errorf("renewed with %v, want the server 192.168.77.1", to)
	}
	sent, _, closes := uc.state()
	if len(sent) != 1 || closes != 1 {
		t.Fatalf("unicast socket: sent %d, closed %d times", len(sent), closes)
	}
	req := sent[0]
	if req.MessageType() != dhcpv4.MessageTypeRequest || !req.ClientIPAddr.Equal(net.IPv4(192, 168, 77, 50)) ||
		req.IsBroadcast() || req.TransactionID == first.TransactionID {
		t.Errorf("renew REQUEST %v", req.Summary())
	}
	// A NAK to the renewal is an error; the lease is kept for the policy
	// to retry until it expires.
	uc2 := newFakeConn(t, clk, server(t, dhcpv4.MessageTypeNak))
	c.openUnicast = func(context.Context, netip.Addr) (conn, error) { return uc2, nil }
	var nak *NAKError
	if _, err := c.Renew(context.Background()); !errors.As(err, &nak) {
		t.Fatalf("Renew = %v, want a NAK", err)
	}
}

func TestMatch(t *testing.T) {
	d, err := dhcpv4.NewDiscovery(testHW())
	if err != nil {
		t.Fatal(err)
	}
	w := want{xid: d.TransactionID, hw: testHW(), types: []dhcpv4.MessageType{dhcpv4.MessageTypeOffer}, server: net.IPv4(192, 168, 77, 1)}
	if _, err := w.match(answer(t, d, dhcpv4.MessageTypeOffer, "192.168.77.1")); err != nil {
		t.Fatalf("the offer: %v", err)
	}
	other := *d
	other.TransactionID[3]++
	stranger := *d
	stranger.ClientHWAddr = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"request", d.ToBytes(), ErrNotReply},
		{"xid", answer(t, &other, dhcpv4.MessageTypeOffer, "192.168.77.1"), ErrXID},
		{"chaddr", answer(t, &stranger, dhcpv4.MessageTypeOffer, "192.168.77.1"), ErrHWAddr},
		{"type", answer(t, d, dhcpv4.MessageTypeAck, "192.168.77.1"), ErrMessageType},
		{"server", answer(t, d, dhcpv4.MessageTypeOffer, "192.168.77.2"), ErrServer},
		{"no address", answer(t, d, dhcpv4.MessageTypeOffer, "192.168.77.1", dhcpv4.WithYourIP(net.IPv4zero)), ErrOffer},
	} {
		if _, err := w.match(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	for _, b := range [][]byte{nil, []byte("garbage"), d.ToBytes()[:100]} {
		if m, err := w.match(b); err == nil {
			t.Errorf("%q decoded as %v", b, m)
		}
	}
}
