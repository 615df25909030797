package renew

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/estclient"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/fw/settings"
	"github.com/zmonitor/firmware/internal/proto/payload"
)

// Settings is the part of the settings store a renewal commits to.
type Settings interface {
	Renew(oldCertDER, newCertDER []byte, newKeyRef string) (settings.Provisioning, error)
}

// ConnTest runs the connection test of serverURL with a candidate pair:
// the device's conncheck. It returns the server's Date (zero if none).
type ConnTest func(ctx context.Context, serverURL string, caDER, certDER []byte, key crypto.Signer) (time.Time, error)

// Deps are a renewal's collaborators. All are required except Dial,
// Record and Rand.
type Deps struct {
	Keys     keys.Store
	Settings Settings
	ConnTest ConnTest
	// Now is the device's wall clock (clock.Wall.Now's time).
	Now func() time.Time
	// Observe is told every time the renewal learnt (clock.Wall.Observe).
	Observe func(time.Time)
	// Dial replaces the TCP dialer of the EST requests.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Record receives the renewal's audit events.
	Record func(audit.Event)
	// Rand is the randomness of the CSR signature (default crypto/rand).
	Rand io.Reader
	// Timeout bounds each EST request (estclient.DefaultTimeout if zero).
	Timeout time.Duration
}

// Result is a renewal that switched.
type Result struct {
	// Committed is the provisioning now committed: the new certificate and
	// key reference.
	Committed settings.Provisioning
	Old, New  *x509.Certificate
	// From and To are the slots: the old key was in From and is evicted
	// (unless OldKeyLeft), the new one is in To.
	From, To keys.Slot
	// OldKeyLeft is why the old key could not be evicted (nil when it
	// was): the boot evicts it.
	OldKeyLeft error
}

// Errors a caller may test with errors.Is.
var (
	// ErrNoEST: the provisioning names no EST server.
	ErrNoEST = errors.New("renew: the provisioning names no EST server")
	// ErrRefused: the EST server refused the request (estclient.Error
	// says how).
	ErrRefused = errors.New("renew: the EST server refused")
	// ErrBadCertificate: the certificate the server returned is not one
	// the device can use.
	ErrBadCertificate = errors.New("renew: issued certificate unusable")
)

// Renew renews cur's client certificate: a new key in the TPM, an EST
// simple re-enrollment authenticated by the current certificate and key,
// checks on the certificate returned, a connection test with the new pair,
// then the switch (see the package documentation). On any error before
// the switch the new key is thrown away and cur stays in force.
func Renew(ctx context.Context, d Deps, cur settings.Provisioning) (res Result, err error) {
	record := d.Record
	if record == nil {
		record = func(audit.Event) {}
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if cur.ESTURL == "" {
		return res, ErrNoEST
	}
	base, err := payload.ParseESTURL(cur.ESTURL)
	if err != nil {
		return res, fmt.Errorf("renew: EST URL: %w", err)
	}
	if res.From, err = keys.SlotOfRef(cur.ClientKeyRef); err != nil {
		return res, fmt.Errorf("renew: %w", err)
	}
	res.To = res.From.Other()
	if res.Old, err = x509.ParseCertificate(cur.ClientCertDER); err != nil {
		return res, fmt.Errorf("renew: current certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(cur.CACertDER)
	if err != nil {
		return res, fmt.Errorf("renew: CA certificate: %w", err)
	}
	oldKey, err := d.Keys.ClientKeyAt(res.From)
	if err != nil {
		return res, fmt.Errorf("renew: current key (slot %s): %w", res.From, err)
	}
	// A key left in the other slot by an earlier renewal cut short goes
	// first: the settings do not name it.
	if err := d.Keys.ForgetClientKeyAt(res.To); err != nil {
		return res, fmt.Errorf("renew: clear slot %s: %w", res.To, err)
	}

	key, err := d.Keys.NewClientKey()
	if err != nil {
		return res, fmt.Errorf("renew: new key: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = key.Discard()
		}
	}()
	csr, err := x509.CreateCertificateRequest(d.Rand, &x509.CertificateRequest{
		// RFC 7030 section 4.2.2: the subject and names of the
		// certificate being renewed, byte for byte.
		RawSubject: res.Old.RawSubject,
		DNSNames:   res.Old.DNSNames,
	}, key)
	if err != nil {
		return res, fmt.Errorf("renew: certification request: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	c := &estclient.Client{
		Base: base, CA: pool, Dial: d.Dial, Now: d.Now, Timeout: d.Timeout,
		Cert: tls.Certificate{Certificate: [][]byte{cur.ClientCertDER}, Leaf: res.Old, PrivateKey: oldKey},
	}
	issued, ans, err := c.SimpleReenroll(ctx, csr)
	observe(d, ans.Date)
	if err != nil {
		var ee *estclient.Error
		if errors.As(err, &ee) {
			observe(d, ee.Date)
			return res, fmt.Errorf("%w: %w", ErrRefused, err)
		}
		return res, fmt.Errorf("renew: %w", err)
	}
	if err := checkIssued(issued, pool, key.Public(), cur.DeviceID, d.Now()); err != nil {
		return res, err
	}
	// The CA signed it: its not-before is a time that has passed.
	observe(d, issued.NotBefore)
	record(audit.Event{Event: "RENEWAL_ISSUED", Reason: fmt.Sprintf("serial %s, valid %s to %s, testing it", issued.SerialNumber.Text(16), stamp(issued.NotBefore), stamp(issued.NotAfter))})

	date, err := d.ConnTest(ctx, cur.ServerURL, cur.CACertDER, issued.Raw, key)
	observe(d, date)
	if err != nil {
		return res, fmt.Errorf("renew: connection test with the new certificate: %w", err)
	}

	// The switch: key to the other slot, settings, old key out.
	if err := key.CommitTo(res.To); err != nil {
		return res, fmt.Errorf("renew: commit key to slot %s: %w", res.To, err)
	}
	committed = true
	res.Committed, err = d.Settings.Renew(cur.ClientCertDER, issued.Raw, res.To.Ref())
	if err != nil {
		if ferr := d.Keys.ForgetClientKeyAt(res.To); ferr != nil {
			err = fmt.Errorf("%w (and the new key stays in slot %s until the next boot: %v)", err, res.To, ferr)
		}
		return res, fmt.Errorf("renew: commit settings: %w", err)
	}
	res.New = issued
	res.OldKeyLeft = d.Keys.ForgetClientKeyAt(res.From)
	return res, nil
}

// Confirm makes one EST request (the CA certificates) with the pair now
// committed: the server learns that the device switched, and the device
// the time. Its failure changes nothing.
func Confirm(ctx context.Context, d Deps, p settings.Provisioning) error {
	base, err := payload.ParseESTURL(p.ESTURL)
	if err != nil {
		return fmt.Errorf("renew: confirm: %w", err)
	}
	slot, err := keys.SlotOfRef(p.ClientKeyRef)
	if err != nil {
		return fmt.Errorf("renew: confirm: %w", err)
	}
	k, err := d.Keys.ClientKeyAt(slot)
	if err != nil {
		return fmt.Errorf("renew: confirm: %w", err)
	}
	ca, err := x509.ParseCertificate(p.CACertDER)
	if err != nil {
		return fmt.Errorf("renew: confirm: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	c := &estclient.Client{Base: base, CA: pool, Dial: d.Dial, Now: d.Now, Timeout: d.Timeout,
		Cert: tls.Certificate{Certificate: [][]byte{p.ClientCertDER}, PrivateKey: k}}
	_, ans, err := c.CACerts(ctx)
	observe(d, ans.Date)
	return err
}

// checkIssued checks the certificate the EST server returned: it chains
// to the provisioning's CA for client authentication, is for the new key
// and for this device.
func checkIssued(c *x509.Certificate, ca *x509.CertPool, pub crypto.PublicKey, deviceID string, now time.Time) error {
	at := now
	if c.NotBefore.After(at) {
		// The device's clock lags the CA's: verify at the certificate's
		// own start, so that a lagging clock cannot refuse it (its end is
		// still checked: NotAfter must come after NotBefore).
		at = c.NotBefore
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	ep, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || !ep.Equal(pub) {
		return fmt.Errorf("%w: it is not for the key the request was signed with", ErrBadCertificate)
	}
	if c.Subject.CommonName != deviceID {
		return fmt.Errorf("%w: it is for %.40q, not %s", ErrBadCertificate, c.Subject.CommonName, deviceID)
	}
	return nil
}

func observe(d Deps, t time.Time) {
	if d.Observe != nil && !t.IsZero() {
		d.Observe(t)
	}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
