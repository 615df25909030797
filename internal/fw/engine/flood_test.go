package engine_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/deviceclient"
	"github.com/zmonitor/firmware/internal/fw/console"
	"github.com/zmonitor/firmware/internal/fw/engine"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// selfSigned is a client certificate nobody trusts, as anyone on the ward
// network can make one.
func selfSigned(t testing.TB, cn string) tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// flood is load on the provisioning port: workers that open TLS
// connections with a client certificate, one after the other, until Stop.
type flood struct {
	stop     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
	attempts atomic.Int64 // connections that got through TCP
}

// startFlood starts workers connecting to addr from local address from
// ("" for any) with cert.
func startFlood(workers int, addr, from string, cert tls.Certificate) *flood {
	f := &flood{stop: make(chan struct{})}
	conf := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}} //nolint:gosec // the attacker does not care who the device is
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	for range workers {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for {
				select {
				case <-f.stop:
					return
				default:
				}
				raw, err := d.Dial("tcp", addr)
				if err != nil {
					// The port is closed (or the backlog full): try
					// again in a moment, as a flooder would.
					select {
					case <-f.stop:
						return
					case <-time.After(time.Millisecond):
					}
					continue
				}
				f.attempts.Add(1)
				_ = raw.SetDeadline(time.Now().Add(5 * time.Second))
				c := tls.Client(raw, conf)
				if c.Handshake() == nil {
					// TLS 1.3: the refusal of the client certificate
					// arrives as an alert on the first read.
					_, _ = io.Copy(io.Discard, c)
				}
				raw.Close()
			}
		}()
	}
	return f
}

// Stop ends the flood and waits for its workers.
func (f *flood) Stop() {
	f.once.Do(func() { close(f.stop) })
	f.wg.Wait()
}

// startHellos sends back-to-back hellos with a legitimate signer
// certificate until Stop: a Central Station gone wrong.
func (r *rig) startHellos(workers int, token string) *flood {
	f := &flood{stop: make(chan struct{})}
	addr := r.eng.EndpointAddr()
	for range workers {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			c := deviceclient.New(addr, r.keys.Identity().Public().(*ecdsa.PublicKey), "ZM-001", deviceclient.Opts{Certificate: r.signer.TLSCertificate(), Timeout: 10 * time.Second})
			defer c.Close()
			for {
				select {
				case <-f.stop:
					return
				default:
				}
				_, err := c.Hello(context.Background(), token)
				if err != nil && !strings.Contains(err.Error(), "refused") && !strings.Contains(err.Error(), "TOO_MANY") {
					select {
					case <-f.stop:
						return
					case <-time.After(time.Millisecond):
					}
				}
				f.attempts.Add(1)
			}
		}()
	}
	return f
}

// within runs f and fails the test if it has not returned in 15 s: the
// engine is frozen.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("%s did not answer within 15 s: the engine is frozen", what)
	}
}

// consoleDevice is the engine as the diagnostics console sees it, for the
// two commands a technician types when the device seems stuck.
type consoleDevice struct{ e *engine.Engine }

func (d consoleDevice) Status() console.Status {
	s := d.e.Status()
	return console.Status{State: s.State, SessionLeft: s.Remaining, Locked: s.Locked, LastError: s.LastError, ConnCheck: s.ConnCheck}
}
func (d consoleDevice) QRText() []byte                         { return d.e.QRText() }
func (consoleDevice) AuditTail(int) ([]string, error)          { return nil, nil }
func (consoleDevice) Config() ([]console.Setting, error)       { return nil, nil }
func (consoleDevice) PublicKeys() ([]console.PublicKey, error) { return nil, nil }
func (consoleDevice) Enrollment() ([]byte, error)              { return []byte("{}"), nil }
func (consoleDevice) Net() ([]string, error)                   { return nil, nil }
func (consoleDevice) Version() string                          { return "test" }
func (consoleDevice) Provision() error                         { return nil }
func (consoleDevice) Reboot() error                            { return nil }
func (consoleDevice) FactoryReset(ctx context.Context) error   { return nil }

var _ console.Device = consoleDevice{}

// consoleSays runs console commands on the engine and returns the output.
func (r *rig) consoleSays(lines ...string) string {
	r.t.Helper()
	var out strings.Builder
	rw := struct {
		io.Reader
		io.Writer
	}{strings.NewReader(strings.Join(lines, "\r") + "\r"), &out}
	c, err := console.New(rw, consoleDevice{r.eng}, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	within(r.t, "console "+strings.Join(lines, ", "), func() {
		if err := c.Run(context.Background()); err != nil {
			r.t.Errorf("console: %v", err)
		}
	})
	return out.String()
}

// A flood of TLS connections with self-signed client certificates, and
// back-to-back hellos from a legitimate Central Station, through a whole
// pairing session: when the session expires and the port closes, the
// engine must still answer the button and the console.
func TestFloodThroughTheSessionDoesNotFreezeTheEngine(t *testing.T) {
	r := newRig(t, func(o *engine.Options) { o.SessionLifetime = 2 * time.Minute })
	q := r.pair()
	addr := r.eng.EndpointAddr()
	strangers := startFlood(16, addr, "", selfSigned(t, "Central Station provisioning signer"))
	defer strangers.Stop()
	hellos := r.startHellos(2, q.PairingToken)
	defer hellos.Stop()
	// Enough for the old engine to freeze: more refusals than its queue
	// held while it closed the port, and hellos past the session's limit.
	r.eventually("a flood in full swing", func() bool { return strangers.attempts.Load() >= 100 && hellos.attempts.Load() >= 12 })
	t.Logf("flood before expiry: %d connections, %d hellos", strangers.attempts.Load(), hellos.attempts.Load())

	r.clk.Advance(2 * time.Minute) // the session expires under the flood
	r.waitState(state.Unprovisioned)
	if !r.portClosed(addr) {
		t.Error("port open after the session expired")
	}
	strangers.Stop()
	hellos.Stop()

	within(t, "the button", func() {
		if err := r.eng.Press(); err != nil {
			t.Errorf("press after the flood: %v", err)
		}
	})
	r.waitState(state.ReadyToPair)
	out := r.consoleSays("status", "qr plain")
	if !strings.Contains(out, "state: READY_TO_PAIR") || !strings.Contains(out, "█") {
		t.Errorf("console after the flood:\n%s", out)
	}
	// And the device still pairs.
	r.mustSucceed(r.currentQR())
}

// currentQR is the pairing QR the engine shows now.
func (r *rig) currentQR() pairing.QRContent {
	r.t.Helper()
	q, err := pairing.ParseQR(r.eng.QRText())
	if err != nil {
		r.t.Fatalf("current QR: %v", err)
	}
	return q
}
