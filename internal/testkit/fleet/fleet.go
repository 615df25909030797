package fleet

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/central/ca"
	"github.com/zmonitor/firmware/internal/central/estserver"
	"github.com/zmonitor/firmware/internal/central/server/monitor"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/audit/audittest"
	"github.com/zmonitor/firmware/internal/fw/conncheck"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/fw/keys/softkeys"
	"github.com/zmonitor/firmware/internal/fw/renew"
	"github.com/zmonitor/firmware/internal/fw/settings"
	"github.com/zmonitor/firmware/internal/proto/est"
	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

// Station is a Central Station with an EST server and a monitoring server.
type Station struct {
	CA        *testpki.CA
	Issuer    *ca.CA
	Store     store.Store
	EST       *estserver.Server
	Monitor   *monitor.Server
	ESTURL    string // https://127.0.0.1:port/.well-known/est
	ServerURL string // https://127.0.0.1:port
	// Offset shifts the station's clock (the --clock-offset drill).
	mu     sync.Mutex
	offset time.Duration
	estHS  *http.Server
}

// StopEST stops the EST server (an outage: renewals fail to connect).
func (s *Station) StopEST() { s.estHS.Close() }

// Now is the station's clock.
func (s *Station) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Add(s.offset)
}

// SetOffset moves the station's clock.
func (s *Station) SetOffset(d time.Duration) {
	s.mu.Lock()
	s.offset = d
	s.mu.Unlock()
}

// NewStation starts a station on the database dsn; everything stops when
// the test ends.
func NewStation(t testing.TB, dsn string) *Station {
	t.Helper()
	ctx := context.Background()
	root, err := testpki.NewCA("fleet device CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := &Station{CA: root, Store: st}
	s.Issuer, err = ca.New(root.Cert, root.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.EST, err = estserver.New(estserver.Config{CA: s.Issuer, Store: st, Now: s.Now})
	if err != nil {
		t.Fatal(err)
	}
	// The servers' certificate outlives the clock drills (a device's
	// whole certificate life ahead).
	tmpl := testpki.ServerTemplate("fleet central")
	tmpl.NotAfter = time.Now().Add(5 * 365 * 24 * time.Hour)
	srvCert, err := root.NewLeaf(tmpl, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.estHS = s.EST.HTTPServer("", srvCert.TLS())
	s.ESTURL = "https://" + serve(t, s.estHS) + est.WellKnown
	// The monitoring server enforces the device CA's CRL, made from the
	// store on each check (as zm-central serve does).
	crl := func(ctx context.Context) (*x509.RevocationList, error) {
		entries, err := store.RevocationEntries(ctx, st)
		if err != nil {
			return nil, err
		}
		der, err := s.Issuer.CRL(entries, big.NewInt(s.Now().UnixMicro()), s.Now())
		if err != nil {
			return nil, err
		}
		return x509.ParseRevocationList(der)
	}
	s.Monitor, err = monitor.New(monitor.Config{ClientCAs: root.Pool(), Certificate: srvCert.TLS(), Now: s.Now, CRL: crl})
	if err != nil {
		t.Fatal(err)
	}
	s.ServerURL = "https://" + serve(t, s.Monitor.HTTPServer(""))
	return s
}

func serve(t testing.TB, hs *http.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.ServeTLS(l, "", "") //nolint:errcheck // ends with Close
	t.Cleanup(func() { hs.Close() })
	return l.Addr().String()
}

// Device is a software monitor provisioned by the station.
type Device struct {
	ID       string
	Keys     *softkeys.Store
	Settings *settings.Store
	// SettingsPath is the settings file (reopened as after a reboot).
	SettingsPath string
	Audit        *audittest.Recorder
	Wall         *clock.Wall
	station      *Station
}

// NewDevice enrolls id at the station and provisions it as a pairing would
// (certificate recorded and in use, key in slot A, settings committed).
func (s *Station) NewDevice(t testing.TB, id string) *Device {
	t.Helper()
	ctx := context.Background()
	ks, err := softkeys.New(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	idSPKI, _ := x509.MarshalPKIXPublicKey(ks.Identity().Public())
	paySPKI, _ := x509.MarshalPKIXPublicKey(ks.PayloadKey().PublicKey())
	if _, err := s.Store.ImportDevice(ctx, store.Enrollment{DeviceID: id, DeviceSerial: "SN-" + id, IdentitySPKI: idSPKI, PayloadSPKI: paySPKI, FirmwareVersion: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	k, err := ks.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: id}}, k)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(csrDER)
	cert, err := s.Issuer.IssueClient(csr, id, s.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.RecordCertificate(ctx, id, "p-"+id, cert.Raw); err != nil {
		t.Fatal(err)
	}
	if err := s.Store.MarkCertificateInUse(ctx, store.CertificateSerial(cert)); err != nil {
		t.Fatal(err)
	}
	if err := k.Commit(); err != nil {
		t.Fatal(err)
	}
	rec := &audittest.Recorder{}
	path := filepath.Join(t.TempDir(), settings.FileName)
	set, err := settings.Open(path, rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	p := settings.Provisioning{
		ServerURL: s.ServerURL, DeviceID: id, CACertDER: s.CA.Cert.Raw, ClientCertDER: cert.Raw,
		ClientKeyRef: keys.SlotA.Ref(), ConfigVersion: 1, ProvisionedAt: time.Now(), ClockTrusted: true, ESTURL: s.ESTURL,
	}
	if err := set.Stage(p); err != nil {
		t.Fatal(err)
	}
	if err := set.Commit(); err != nil {
		t.Fatal(err)
	}
	return &Device{ID: id, Keys: ks, Settings: set, SettingsPath: path, Audit: rec, Wall: clock.NewWall(clock.System{}, time.Time{}, nil), station: s}
}

// Current is the device's committed provisioning.
func (d *Device) Current(t testing.TB) settings.Provisioning {
	t.Helper()
	p, ok, err := d.Settings.Current()
	if err != nil || !ok {
		t.Fatalf("%s: committed provisioning: %v, %v", d.ID, ok, err)
	}
	return p
}

// Deps are the renewal's collaborators for this device.
func (d *Device) Deps() renew.Deps {
	return renew.Deps{
		Keys: d.Keys, Settings: d.Settings,
		ConnTest: renew.CheckConnection(conncheck.Config{Attempts: 1, Now: d.now}),
		Now:      d.now, Observe: func(t time.Time) { d.Wall.Observe(t) },
		Record: func(ev audit.Event) { _ = d.Audit.Record(ev) },
	}
}

func (d *Device) now() time.Time { t, _ := d.Wall.Now(); return t }

// Renew renews the device's certificate once.
func (d *Device) Renew(ctx context.Context) (renew.Result, error) {
	p, ok, err := d.Settings.Current()
	if err != nil || !ok {
		return renew.Result{}, fmt.Errorf("%s: nothing committed: %v", d.ID, err)
	}
	return renew.Renew(ctx, d.Deps(), p)
}
