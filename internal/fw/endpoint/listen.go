package endpoint

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/zmonitor/firmware/internal/fw/sys/http1"
	"github.com/zmonitor/firmware/internal/proto/failure"
)

// listening is one period of the port being open: its listener and its
// connections.
type listening struct {
	ln     net.Listener
	ctx    context.Context // ends when the period is closed
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	conns  map[*conn]struct{}
	wg     sync.WaitGroup // the connections
}

// conn is one accepted connection.
type conn struct {
	raw    net.Conn
	host   string
	ctx    context.Context // ends with the connection or when the port closes
	cancel context.CancelFunc

	// proven is set once the handshake proved a client certificate that
	// chains to the anchor: Close lets such a connection finish within
	// the grace period, and cuts the others at once.
	mu     sync.Mutex
	proven bool
}

func (c *conn) setProven() {
	c.mu.Lock()
	c.proven = true
	c.mu.Unlock()
}

func (c *conn) isProven() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proven
}

// Start listens on addr (e.g. ":8444"). It fails if already listening.
// Connections of an earlier period that are still finishing do not stop it.
func (s *Server) Start(addr string) (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		return nil, errors.New("endpoint: already listening")
	}
	cert, err := s.certificate()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("endpoint: listen %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &listening{ln: ln, ctx: ctx, cancel: cancel, conns: make(map[*conn]struct{})}
	s.cur = l
	s.inflight.Add(1)
	go s.accept(l, s.tlsConfig(cert))
	return ln.Addr(), nil
}

func (s *Server) accept(l *listening, conf *tls.Config) {
	defer s.inflight.Done()
	for {
		raw, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient failure (out of descriptors): do not spin.
			s.opts.Log.Warn("provisioning endpoint: accept", "err", err)
			select {
			case <-l.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		c, err := s.admit(l, raw)
		if err != nil {
			raw.Close()
			if !errors.Is(err, errClosing) {
				s.refuse(Refusal{Code: failure.TooManyAttempts, Remote: raw.RemoteAddr().String(), Err: err})
			}
			continue
		}
		go func() {
			defer s.inflight.Done()
			defer s.release(l, c)
			s.serveConn(c, conf)
		}()
	}
}

var errClosing = errors.New("endpoint: port closing")

// admit counts a new connection against the caps, or says which one it is
// over: then it is closed at once.
func (s *Server) admit(l *listening, raw net.Conn) (*conn, error) {
	host := hostOnly(raw.RemoteAddr())
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.open >= s.opts.MaxConns:
		return nil, fmt.Errorf("connection limit: %d connections open, closed at once", s.open)
	case s.perHost[host] >= s.opts.MaxConnsPerHost:
		return nil, fmt.Errorf("connection limit: %d connections open from this address, closed at once", s.perHost[host])
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errClosing
	}
	ctx, cancel := context.WithCancel(l.ctx)
	c := &conn{raw: raw, host: host, ctx: ctx, cancel: cancel}
	l.conns[c] = struct{}{}
	l.wg.Add(1)
	s.open++
	s.perHost[host]++
	s.inflight.Add(1)
	return c, nil
}

func (s *Server) release(l *listening, c *conn) {
	c.cancel()
	c.raw.Close()
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	l.wg.Done()
	s.mu.Lock()
	s.open--
	if s.perHost[c.host]--; s.perHost[c.host] <= 0 {
		delete(s.perHost, c.host)
	}
	s.mu.Unlock()
}

func hostOnly(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// serveConn does the handshake, reads one request and answers it.
func (s *Server) serveConn(c *conn, base *tls.Config) {
	remote := c.raw.RemoteAddr().String()
	_ = c.raw.SetDeadline(time.Now().Add(handshakeTimeout))
	hctx, cancel := context.WithTimeout(c.ctx, handshakeTimeout)
	defer cancel()
	slot := false
	conf := base.Clone()
	// Called once the ClientHello is in: the handshake from here on costs
	// a signature by the identity key.
	conf.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		s.waitingSlot.Add(1)
		defer s.waitingSlot.Add(-1)
		select {
		case s.handshakes <- struct{}{}:
			slot = true
			return nil, nil
		case <-hctx.Done():
			err := fmt.Errorf("no handshake slot within %s (%d handshakes at once)", handshakeTimeout, cap(s.handshakes))
			if c.ctx.Err() == nil { // not the port closing
				s.refuse(Refusal{Code: failure.TooManyAttempts, Remote: remote, Err: err})
			}
			return nil, err
		}
	}
	var chained bool // the client's chain reached the anchor
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := s.verifyClient(cs.PeerCertificates); err != nil {
			s.refuse(Refusal{Code: failure.SignerUntrusted, Remote: remote, Err: err})
			return err
		}
		chained = true
		return nil
	}
	tc := tls.Server(c.raw, conf)
	err := tc.HandshakeContext(hctx)
	if slot {
		<-s.handshakes
	}
	if err != nil {
		if chained && c.ctx.Err() == nil && !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) {
			// TLS 1.3 checks the client's signature after the chain: the
			// certificate chains to the anchor, but the client did not
			// sign the handshake with its key (typically a copy of the
			// signer's certificate, which is no secret, without the key:
			// "invalid signature by the client certificate").
			s.refuse(Refusal{Code: failure.SignerUntrusted, Remote: remote,
				Err: fmt.Errorf("client certificate %s chains to the provisioning anchor, but the handshake failed after it: %w", subjectOf(tc), err)})
			return
		}
		// Chain and slot failures were reported above; the rest (no
		// certificate, TLS 1.2, a dropped connection) is only logged.
		s.opts.Log.Info("provisioning endpoint: handshake", "remote", remote, "err", err)
		return
	}
	c.setProven()
	_ = c.raw.SetDeadline(time.Now().Add(readTimeout))
	x := &exchange{conn: tc, remote: remote}
	if pc := tc.ConnectionState().PeerCertificates; len(pc) > 0 {
		x.peer = pc[0]
	}
	defer lingerClose(c.raw, tc)
	req, err := http1.ReadRequest(tc, maxRequestHead)
	if err != nil {
		var he *http1.Error
		if errors.As(err, &he) {
			s.fail(x, he.Status, failure.New(failure.PayloadMalformed, "read request", err))
			return
		}
		s.opts.Log.Info("provisioning endpoint: read request", "remote", x.remote, "err", err)
		return
	}
	x.req = req
	switch req.Path {
	case "/v1/hello":
		s.handleHello(c.ctx, x)
	case "/v1/config":
		s.handleConfig(c.ctx, x)
	case "/v1/refusal":
		s.handleRefusal(c.ctx, x)
	case "/v1/status":
		s.handleStatus(x)
	default:
		s.fail(x, 404, failure.Errorf(failure.PayloadMalformed, "route", "no such endpoint %q", req.Path))
	}
}

// subjectOf names the certificate the client presented, for a refusal.
func subjectOf(tc *tls.Conn) string {
	if pc := tc.ConnectionState().PeerCertificates; len(pc) > 0 {
		return fmt.Sprintf("%q", pc[0].Subject.String())
	}
	return "(none)"
}

// Listening reports whether the port is open.
func (s *Server) Listening() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur != nil
}

// Close closes the port and returns at once: it never waits for a
// connection. Every connection's context is cancelled; those whose
// handshake has not proven a client certificate are cut now, the others
// have Opts.Grace to finish their exchange (a config push streaming its
// final state) before they are cut too. Wait waits for them.
func (s *Server) Close() {
	s.mu.Lock()
	l := s.cur
	s.cur = nil
	s.mu.Unlock()
	if l == nil {
		return
	}
	l.ln.Close()
	l.cancel()
	l.mu.Lock()
	l.closed = true
	proven := 0
	for c := range l.conns {
		if c.isProven() {
			proven++
			continue
		}
		c.raw.Close()
	}
	l.mu.Unlock()
	if proven == 0 {
		return
	}
	s.inflight.Add(1)
	go func() {
		defer s.inflight.Done()
		done := make(chan struct{})
		go func() { l.wg.Wait(); close(done) }()
		t := time.NewTimer(s.opts.Grace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			l.mu.Lock()
			for c := range l.conns {
				c.raw.Close()
			}
			l.mu.Unlock()
		}
	}()
}

// Wait waits, up to ctx, until the port is closed and every connection has
// ended. It is for shutdown and tests: the device's engine never calls it
// while it owns the state.
func (s *Server) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
