package server

import (
	"github.com/zmonitor/firmware/internal/proto/devicewire"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"

	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/ca"
	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/pusher"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/fw/endpoint"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/payload"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

// The tests of this file run the real pusher against software devices
// behind the real provisioning endpoint, and check what the store keeps of
// every certificate the Central Station issued.

// deviceMode is how a softDevice answers a push.
type deviceMode int

const (
	// provisions verifies the payload as the firmware does: PROVISIONED
	// when it is valid, else PROVISIONING_FAILED with the check's code.
	provisions deviceMode = iota
	// failsConnectionTest applies a valid payload, then its connection
	// test to the monitoring server fails.
	failsConnectionTest
	// refusesPush refuses the pushed envelope outright (HTTP refusal).
	refusesPush
	// holdsPush applies a valid payload and stays in TESTING_CONNECTION
	// until release is closed.
	holdsPush
	// trustsAnotherStation has another provisioning root as its anchor:
	// its endpoint refuses the Central Station's TLS certificate.
	trustsAnotherStation
	// sessionOver refuses the hello: its pairing session has expired.
	sessionOver
)

type trustedWall struct{}

func (trustedWall) Now() (time.Time, bool) { return time.Now(), true }
func (trustedWall) Adopt(time.Time) error  { return nil }

// softDevice is a device in software behind the real endpoint.
type softDevice struct {
	id         string
	identity   *ecdsa.PrivateKey
	payloadKey *ecdh.PrivateKey
	sess       *pairing.Session
	anchors    *x509.CertPool
	mode       deviceMode
	holding    chan struct{} // holdsPush: closed once the device holds the stream
	release    chan struct{} // holdsPush: closed by the test

	mu        sync.Mutex
	nonce     []byte
	clientKey *ecdsa.PrivateKey
	pushes    int
	verified  *payload.Verified
}

func (d *softDevice) Hello(_ context.Context, req devicewire.HelloRequest, _ *x509.Certificate) (devicewire.HelloResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := t0
	if d.mode == sessionOver {
		now = t0.Add(time.Hour)
	}
	if err := d.sess.CheckToken(req.PairingToken, now); err != nil {
		return devicewire.HelloResponse{}, err
	}
	d.nonce = make([]byte, devicewire.NonceSize)
	rand.Read(d.nonce)
	d.clientKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: d.id}}, d.clientKey)
	if err != nil {
		return devicewire.HelloResponse{}, err
	}
	return devicewire.NewHello(d.identity, d.id, d.nonce, d.payloadKey.PublicKey(), csr)
}

func (d *softDevice) Config(_ context.Context, env []byte, _ *x509.Certificate) (<-chan devicewire.Progress, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pushes++
	if d.mode == refusesPush {
		return nil, failure.Errorf(failure.SessionMismatch, "config", "no pairing exchange in progress")
	}
	ch := make(chan devicewire.Progress, 8)
	ch <- devicewire.Progress{State: state.PairingReceived.String(), Step: "validate"}
	v, err := payload.Verify(env, d.payloadKey, payload.Expect{
		Anchors: d.anchors, DeviceID: d.id, SessionNonce: d.nonce, Wall: trustedWall{}, ClientKey: d.clientKey.Public(),
		CheckPairingCode: func(typed string) error { return d.sess.CheckCode(typed, t0) },
	})
	if err != nil {
		ch <- devicewire.Progress{State: state.ProvisioningFailed.String(), Final: true,
			Error: &devicewire.ErrorBody{Code: failure.CodeOf(err).String(), Message: "payload refused"}}
		close(ch)
		return ch, nil
	}
	d.verified = v
	ch <- devicewire.Progress{State: state.ApplyingConfig.String()}
	ch <- devicewire.Progress{State: state.TestingConnection.String()}
	switch d.mode {
	case failsConnectionTest:
		ch <- devicewire.Progress{State: state.ProvisioningFailed.String(), Final: true,
			Error: &devicewire.ErrorBody{Code: failure.ConnectionFailed.String(), Message: "monitoring server unreachable"}}
	case holdsPush:
		go func() {
			close(d.holding)
			<-d.release
			ch <- devicewire.Progress{State: state.Provisioned.String(), Final: true}
			close(ch)
		}()
		return ch, nil
	default:
		ch <- devicewire.Progress{State: state.Provisioned.String(), Final: true}
	}
	close(ch)
	return ch, nil
}

// Refuse implements endpoint.Device: this software device has no screen
// to show a refusal on.
func (d *softDevice) Refuse(context.Context, failure.Code, []byte, string, *x509.Certificate) error {
	return nil
}

func (d *softDevice) Status() devicewire.Status {
	return devicewire.Status{State: state.ReadyToPair.String()}
}

func (d *softDevice) snapshot() (pushes int, verified *payload.Verified, clientKey *ecdsa.PublicKey) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.clientKey != nil {
		clientKey = &d.clientKey.PublicKey
	}
	return d.pushes, d.verified, clientKey
}

// station is the Central Station's PKI, and a Provisioner that sends each
// device's job to that device's pusher (the map is filled before the
// pairing is posted).
type station struct {
	root    *testpki.CA
	signer  pusher.Signer
	ca      *ca.CA
	pushers map[string]*pusher.Pusher
	addrs   map[string]string
}

func newStation(t *testing.T) *station {
	t.Helper()
	now := time.Now()
	root, err := testpki.NewCA("Z Monitor provisioning root", now)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := testpki.ClientTemplate("Central Station provisioning signer")
	tmpl.UnknownExtKeyUsage = append(tmpl.UnknownExtKeyUsage, payload.SignerEKU)
	signer, err := root.NewLeaf(tmpl, now)
	if err != nil {
		t.Fatal(err)
	}
	hospital, err := testpki.NewCA("Hospital device CA", now)
	if err != nil {
		t.Fatal(err)
	}
	devCA, err := ca.New(hospital.Cert, hospital.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &station{root: root, signer: pusher.Signer{Key: signer.Key, Chain: []*x509.Certificate{signer.Cert}}, ca: devCA,
		pushers: map[string]*pusher.Pusher{}, addrs: map[string]string{}}
}

func (s *station) Provision(ctx context.Context, j job.Job, progress func(job.Progress)) (job.Outcome, error) {
	return s.pushers[j.DeviceID].Provision(ctx, j, progress)
}

func (s *station) env(t *testing.T, dsn string) *env {
	return newEnvAt(t, dsn, s, func(c *Config) {
		c.DeviceAddr = func(id, _ string) string { return s.addrs[id] }
	})
}

// device enrolls a software device in e's inventory, starts its endpoint
// and its pusher (tweak edits the pusher's Config).
func (s *station) device(t *testing.T, e *env, id string, mode deviceMode, tweak func(*pusher.Config)) *softDevice {
	t.Helper()
	identity, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pk, _ := ecdh.P256().GenerateKey(rand.Reader)
	idDER, _ := x509.MarshalPKIXPublicKey(&identity.PublicKey)
	pkPub, _ := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pk.PublicKey().Bytes())
	pkDER, _ := x509.MarshalPKIXPublicKey(pkPub)
	if _, err := e.st.ImportDevice(context.Background(), store.Enrollment{
		DeviceID: id, DeviceSerial: "SN-" + id, IdentitySPKI: idDER, PayloadSPKI: pkDER, FirmwareVersion: "1.2.3",
	}); err != nil {
		t.Fatal(err)
	}
	sess, err := pairing.NewSession(t0, t0, pairing.SessionOpts{DeviceID: id, DeviceSerial: "SN-" + id, IPAddress: "192.0.2.10", FirmwareVersion: "1.2.3", Signer: identity})
	if err != nil {
		t.Fatal(err)
	}
	anchors := s.root.Pool()
	if mode == trustsAnotherStation {
		other, err := testpki.NewCA("Another Central Station's provisioning root", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		anchors = other.Pool()
	}
	d := &softDevice{id: id, identity: identity, payloadKey: pk, sess: sess, anchors: anchors, mode: mode,
		holding: make(chan struct{}), release: make(chan struct{})}
	ep, err := endpoint.NewServer(d, endpoint.Opts{Identity: identity, DeviceID: id, Anchors: d.anchors})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := ep.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ep.Close)
	cfg := pusher.Config{CA: s.ca, Signer: s.signer, ServerURL: "https://monitoring.hospital.test:9443"}
	if tweak != nil {
		tweak(&cfg)
	}
	p, err := pusher.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.pushers[id], s.addrs[id] = p, addr.String()
	return d
}

// failSecondDial reaches the device for hello, and finds it gone for the
// push (one connection per request).
func failSecondDial(c *pusher.Config) {
	var dials atomic.Int32
	c.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) > 1 {
			return nil, errors.New("connect: network is unreachable (the device went away after hello)")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

// post pairs d through the tablet API and returns the pairing ID.
func (e *env) post(d *softDevice, label string) string {
	e.t.Helper()
	w := e.do(http.MethodPost, "/v1/pairings", e.token, tabletwire.PairingRequest{QR: string(d.sess.QR().Marshal()), Label: label})
	if w.Code != http.StatusAccepted {
		e.t.Fatalf("POST: %d %s", w.Code, w.Body)
	}
	return decode[tabletwire.Accepted](e.t, w).PairingID
}

// onlyCertificate returns the one certificate recorded for deviceID and
// checks the record against the DER: the pairing, the device, the validity.
func (e *env) onlyCertificate(deviceID, pairingID string) (store.IssuedCertificate, *x509.Certificate) {
	e.t.Helper()
	cs, err := e.st.Certificates(context.Background(), deviceID)
	if err != nil || len(cs) != 1 {
		e.t.Fatalf("certificates of %s = %+v, %v; want exactly one", deviceID, cs, err)
	}
	c := cs[0]
	x, err := c.Certificate()
	if err != nil {
		e.t.Fatal(err)
	}
	if c.Serial != store.CertificateSerial(x) || c.DeviceID != deviceID || c.PairingID != pairingID || x.Subject.CommonName != deviceID ||
		!c.NotBefore.Equal(x.NotBefore) || !c.NotAfter.Equal(x.NotAfter) {
		e.t.Errorf("record %+v does not match its certificate (serial %s, CN %s, %v - %v) or pairing %s",
			c, store.CertificateSerial(x), x.Subject.CommonName, x.NotBefore, x.NotAfter, pairingID)
	}
	return c, x
}

// certificateEvents lists the certificate.* audit records of serial.
func (e *env) certificateEvents(serial string) []store.AuditRecord {
	e.t.Helper()
	var out []store.AuditRecord
	err := e.st.ExportAudit(context.Background(), func(r store.AuditRecord) error {
		if strings.HasPrefix(r.Event, "certificate.") && strings.Contains(r.Detail, "serial="+serial+" ") {
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// TestEveryIssuedCertificateRecorded: whatever happens after the client
// certificate is issued, it is in the store with its fate: in use when the
// device is PROVISIONED, revoked with the reason otherwise.
func TestEveryIssuedCertificateRecorded(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := newStation(t)
		e := s.env(t, dsn)
		cases := []struct {
			name       string
			mode       deviceMode
			tweak      func(*pusher.Config)
			wantCode   failure.Code
			wantState  store.CertificateState
			wantReason store.RevocationReason
			wantPushes int
		}{
			{"provisioned", provisions, nil, failure.None, store.CertificateInUse, 0, 1},
			{"push fails after hello", provisions, failSecondDial, failure.ConnectionFailed, store.CertificateRevoked, store.ReasonNotDelivered, 0},
			{"device refuses the tampered payload", provisions, func(c *pusher.Config) {
				c.Tamper = func(p *payload.Config) { p.PairingCode = "ABC-234-DEF" }
			}, failure.PairingCodeMismatch, store.CertificateRevoked, store.ReasonDeviceRefused, 1},
			{"device refuses the push", refusesPush, nil, failure.SessionMismatch, store.CertificateRevoked, store.ReasonDeviceRefused, 1},
			{"connection test fails", failsConnectionTest, nil, failure.ConnectionFailed, store.CertificateRevoked, store.ReasonConnectionTestFailed, 1},
		}
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				id := "ZM-10" + string(rune('0'+i))
				d := s.device(t, e, id, c.mode, c.tweak)
				pid := e.post(d, "BED-"+id)
				e.srv.Wait()
				v := e.pairing(pid)
				if c.wantCode == failure.None {
					if v.State != "succeeded" {
						t.Fatalf("pairing = %+v, want succeeded", v)
					}
				} else if v.State != "failed" || v.Result == nil || v.Result.Code != c.wantCode.String() {
					t.Fatalf("pairing = %+v (result %+v), want failed with %s", v, v.Result, c.wantCode)
				}
				rec, x := e.onlyCertificate(id, pid)
				if rec.State != c.wantState || rec.Reason != c.wantReason {
					t.Errorf("certificate %s is %s (%v), want %s (%v)", rec.Serial, rec.State, rec.Reason, c.wantState, c.wantReason)
				}
				if (c.wantState == store.CertificateRevoked) == rec.RevokedAt.IsZero() {
					t.Errorf("revoked at %v in state %s", rec.RevokedAt, rec.State)
				}
				pushes, verified, clientKey := d.snapshot()
				if pushes != c.wantPushes {
					t.Errorf("%d pushes reached the device, want %d", pushes, c.wantPushes)
				}
				if clientKey == nil || !clientKey.Equal(x.PublicKey) {
					t.Error("the recorded certificate is not for the key of the device's hello")
				}
				if c.wantState == store.CertificateInUse {
					if verified == nil || !bytes.Equal(verified.ClientCert.Raw, rec.DER) || verified.DeviceLabel != "BED-"+id {
						t.Errorf("the device holds another certificate or label than recorded: %+v", verified)
					}
					if v.Label != "BED-"+id {
						t.Errorf("pairing result label %q", v.Label)
					}
				}
				settled := "certificate.in_use"
				if c.wantState == store.CertificateRevoked {
					settled = "certificate.revoked"
				}
				ev := e.certificateEvents(rec.Serial)
				if len(ev) != 2 || ev[0].Event != "certificate.issued" || ev[1].Event != settled ||
					(c.wantReason != 0 && !strings.HasSuffix(ev[1].Detail, " reason="+c.wantReason.String())) {
					t.Errorf("audit of %s: %+v, want certificate.issued then %s %v", rec.Serial, ev, settled, c.wantReason)
				}
			})
		}
		all, err := e.st.AllCertificates(ctx)
		if err != nil || len(all) != len(cases) {
			t.Errorf("AllCertificates: %d, %v; want %d", len(all), err, len(cases))
		}
	})
}

// TestCertificateOfCancelledJobRevoked: the Central Station stops while the
// device holds the push open: the job is cancelled, the certificate is
// revoked as not delivered.
func TestCertificateOfCancelledJobRevoked(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := newStation(t)
		e := s.env(t, dsn)
		d := s.device(t, e, "ZM-201", holdsPush, nil)
		defer close(d.release)
		pid := e.post(d, "")
		<-d.holding
		// The issued certificate is on record before it was delivered.
		if rec, _ := e.onlyCertificate("ZM-201", pid); rec.State != store.CertificateIssued {
			t.Errorf("while the push runs: %s, want issued", rec.State)
		}
		e.srv.Close()
		if v := e.pairing(pid); v.State != "failed" {
			t.Errorf("pairing = %+v", v)
		}
		if rec, _ := e.onlyCertificate("ZM-201", pid); rec.State != store.CertificateRevoked || rec.Reason != store.ReasonNotDelivered {
			t.Errorf("after the cancellation: %s (%v), want revoked (not-delivered)", rec.State, rec.Reason)
		}
	})
}

// failingRecords is a store that cannot record certificates.
type failingRecords struct{ store.Store }

func (failingRecords) RecordCertificate(context.Context, string, string, []byte) error {
	return errors.New("disk full")
}

// TestUnrecordedCertificateNotDelivered: a certificate the store could not
// record never leaves the Central Station.
func TestUnrecordedCertificateNotDelivered(t *testing.T) {
	s := newStation(t)
	e := s.env(t, "sqlite:"+t.TempDir()+"/c.db")
	d := s.device(t, e, "ZM-301", provisions, nil)
	failing, err := New(Config{Store: failingRecords{e.st}, Provisioner: s, Clock: e.clk,
		DeviceAddr: func(id, _ string) string { return s.addrs[id] }})
	if err != nil {
		t.Fatal(err)
	}
	defer failing.Close()
	e.srv = failing
	pid := e.post(d, "")
	failing.Wait()
	if v := e.pairing(pid); v.State != "failed" || v.Result == nil || v.Result.Code != failure.Internal.String() {
		t.Errorf("pairing = %+v", v)
	}
	if pushes, verified, _ := d.snapshot(); pushes != 0 || verified != nil {
		t.Errorf("the device got %d pushes: an unrecorded certificate was delivered", pushes)
	}
}
