package flood

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// SelfSigned is a client certificate nobody trusts, with subject common
// name cn (an attacker may copy the real signer's).
func SelfSigned(cn string) (tls.Certificate, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}, nil
}

// Config is one flood.
type Config struct {
	// Addr is the port ("host:port").
	Addr string
	// From is the local address to connect from ("" for any).
	From string
	// Cert is the client certificate every connection presents.
	Cert tls.Certificate
	// Workers connect at once, each one connection after the other.
	Workers int
	// Limit stops the flood after this many connections (0: until Stop).
	Limit int64
}

// Flood is a running flood.
type Flood struct {
	c        Config
	stop     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
	attempts atomic.Int64
}

// Start starts the workers.
func Start(c Config) *Flood {
	f := &Flood{c: c, stop: make(chan struct{})}
	conf := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{c.Cert}} //nolint:gosec // a flooder does not care who the device is
	d := &net.Dialer{Timeout: 5 * time.Second}
	if c.From != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(c.From)}
	}
	for range c.Workers {
		f.wg.Add(1)
		go f.work(d, conf)
	}
	return f
}

func (f *Flood) work(d *net.Dialer, conf *tls.Config) {
	defer f.wg.Done()
	for {
		select {
		case <-f.stop:
			return
		default:
		}
		if a := f.attempts.Add(1); f.c.Limit > 0 && a > f.c.Limit {
			f.attempts.Add(-1)
			return
		}
		raw, err := d.Dial("tcp", f.c.Addr)
		if err != nil {
			f.attempts.Add(-1)
			// The port is closed (or the backlog full): try again in a
			// moment, as a flooder would.
			select {
			case <-f.stop:
				return
			case <-time.After(time.Millisecond):
			}
			continue
		}
		_ = raw.SetDeadline(time.Now().Add(5 * time.Second))
		c := tls.Client(raw, conf)
		if c.Handshake() == nil {
			// TLS 1.3: the refusal of the client certificate arrives as
			// an alert on the first read.
			_, _ = io.Copy(io.Discard, c)
		}
		raw.Close()
	}
}

// Attempts is the number of connections made so far (that got through
// TCP).
func (f *Flood) Attempts() int64 { return f.attempts.Load() }

// Wait waits for a flood with a Limit to have made its connections.
func (f *Flood) Wait() { f.wg.Wait() }

// Stop ends the flood and waits for its workers. It may be called more
// than once.
func (f *Flood) Stop() {
	f.once.Do(func() { close(f.stop) })
	f.wg.Wait()
}
