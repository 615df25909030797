package engine_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/deviceclient"
	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/pusher"
	"github.com/zmonitor/firmware/internal/fw/console"
	"github.com/zmonitor/firmware/internal/fw/engine"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/testkit/flood"
)

// selfSigned is a client certificate nobody trusts, as anyone on the ward
// network can make one.
func selfSigned(t testing.TB, cn string) tls.Certificate {
	t.Helper()
	c, err := flood.SelfSigned(cn)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// hellos is a loop of hellos with a legitimate signer certificate.
type hellos struct {
	stop     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
	attempts atomic.Int64
}

func (h *hellos) Stop() {
	h.once.Do(func() { close(h.stop) })
	h.wg.Wait()
}

// startHellos sends back-to-back hellos with a legitimate signer
// certificate until Stop: a Central Station gone wrong.
func (r *rig) startHellos(workers int, token string) *hellos {
	f := &hellos{stop: make(chan struct{})}
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
	strangers := flood.Start(flood.Config{Addr: addr, Cert: selfSigned(t, "Central Station provisioning signer"), Workers: 16})
	defer strangers.Stop()
	hellos := r.startHellos(2, q.PairingToken)
	defer hellos.Stop()
	// Enough for the old engine to freeze: more refusals than its queue
	// held while it closed the port, and hellos past the session's limit.
	r.eventually("a flood in full swing", func() bool { return strangers.Attempts() >= 100 && hellos.attempts.Load() >= 12 })
	t.Logf("flood before expiry: %d connections, %d hellos", strangers.Attempts(), hellos.attempts.Load())

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

// holdHealth makes the monitoring server's health check wait until the
// returned function is called: the device stays in TESTING_CONNECTION,
// its port open, meanwhile.
func (r *rig) holdHealth() (release func()) {
	gate := make(chan struct{})
	r.healthMu.Lock()
	r.healthGate = gate
	r.healthMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.healthMu.Lock()
			r.healthGate = nil
			r.healthMu.Unlock()
			close(gate)
		})
	}
}

// countOf is N of a "count=N ..." refusal record, 1 for a first refusal.
func countOf(reason string) int {
	var n int
	if _, err := fmt.Sscanf(reason, "count=%d", &n); err == nil {
		return n
	}
	return 1
}

// A Central Station pairs a device while 2,000 connections with
// self-signed certificates flood its port (32 at a time, from another
// address), and the flood costs the audit log a handful of records.
func TestPairingSucceedsDuringAFloodOf2000Connections(t *testing.T) {
	const floodSize = 2000
	r := newRig(t, func(o *engine.Options) { o.ConnTimeout, o.ConnAttempts = 5*time.Minute, 1 })
	q := r.pair()
	addr := r.eng.EndpointAddr()
	before := len(r.aud.Events())
	release := r.holdHealth()
	defer release()
	strangers := flood.Start(flood.Config{Addr: addr, From: "127.0.0.1", Cert: selfSigned(t, "Central Station provisioning signer"), Workers: 32, Limit: floodSize})
	defer strangers.Stop()
	r.eventually("a flood in full swing", func() bool { return strangers.Attempts() >= 100 })

	// The Central Station, at another address, hellos and pushes during
	// the flood; the device's connection test waits at the monitoring
	// server until the whole flood has hit the port.
	type result struct {
		out job.Outcome
		err error
	}
	done := make(chan result, 1)
	go func() {
		from := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 30 * time.Second}
		out, err := r.provision(q, func(c *pusher.Config) { c.Dial = from.DialContext })
		done <- result{out, err}
	}()
	r.waitState(state.TestingConnection)
	strangers.Wait()
	if got := strangers.Attempts(); got != floodSize {
		t.Fatalf("flood made %d connections, want %d", got, floodSize)
	}
	if !r.eng.Status().Listening {
		t.Fatal("port closed before the flood ended")
	}
	release()
	res := <-done
	if res.err != nil || res.out.State != "PROVISIONED" {
		t.Fatalf("pairing during the flood: %+v, %v", res.out, res.err)
	}
	r.waitState(state.Provisioned)
	if !r.portClosed(addr) {
		t.Error("port open after PROVISIONED")
	}

	var records, refusals int
	for _, ev := range r.aud.Events()[before:] {
		if ev.Event != "REQUEST_REFUSED" {
			continue
		}
		records++
		refusals += countOf(ev.Reason)
		if !strings.HasPrefix(ev.Actor, "remote:127.0.0.1") {
			t.Errorf("refusal of %s: %+v", ev.Actor, ev)
		}
	}
	t.Logf("%d connections refused, %d REQUEST_REFUSED records, %d audit records in all during the flood", refusals, records, len(r.aud.Events())-before)
	// Every flooding connection is refused (closed at once over the
	// caps, or its certificate refused), and counted; at most two records
	// per address and code in the interval (the first, then the count).
	if records > 8 {
		t.Errorf("%d refusal records for one address: not aggregated", records)
	}
	if refusals < floodSize*9/10 {
		t.Errorf("%d refusals counted for %d flooding connections", refusals, floodSize)
	}
}
