package pusher

import (
	"github.com/zmonitor/firmware/internal/proto/devicewire"

	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/zmonitor/firmware/internal/central/ca"
	"github.com/zmonitor/firmware/internal/central/deviceclient"
	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/payload"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// Signer is the Central Station's provisioning signer.
type Signer struct {
	// Key signs payloads and the TLS handshake toward devices.
	Key crypto.Signer
	// Chain is the signer's certificate first, then intermediates, up to
	// (not including) the provisioning root the devices trust.
	Chain []*x509.Certificate
}

// TLSCertificate is the signer as a TLS client certificate.
func (s Signer) TLSCertificate() tls.Certificate {
	c := tls.Certificate{PrivateKey: s.Key}
	for _, x := range s.Chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	if len(s.Chain) > 0 {
		c.Leaf = s.Chain[0]
	}
	return c
}

// Config configures a Pusher.
type Config struct {
	// CA issues the device's client certificate; its certificate is the
	// payload's caCertificate (the monitoring server chains to it).
	CA *ca.CA
	// Signer signs the payload.
	Signer Signer
	// ServerURL is the monitoring server the device connects to.
	ServerURL string
	// ESTURL is the EST server the device renews its certificate at
	// (payload version 2's estUrl, e.g.
	// https://central.hospital:9444/.well-known/est); "" sends a version 1
	// payload and the device never renews.
	ESTURL string
	// ConfigVersion is the payload's configVersion (default 1).
	ConfigVersion int
	// Now is the Central Station's clock (default time.Now).
	Now func() time.Time
	// Rand (default crypto/rand).
	Rand io.Reader
	// Dial overrides how devices are reached (tests, tunnels).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Tamper, if set, edits the payload before it is signed. It exists for
	// drills and tests of the device's checks (wrong code, malformed
	// certificate); production leaves it nil.
	Tamper func(*payload.Config)
	// TamperSigned, if set, edits the payload after it was signed
	// (signature drills); production leaves it nil.
	TamperSigned func(*payload.Config)
	// TamperEnvelope, if set, edits the sealed envelope before it is sent
	// (decryption and replay drills); production leaves it nil.
	TamperEnvelope func([]byte) []byte
	// Attest, if set, decides whether the device booted trusted firmware
	// before anything is issued: the hello carries a fresh attestation
	// nonce, and Attest gets it with the verified hello (the device's quote
	// and event log, internal/central/attestation). An error refuses the
	// pairing with FIRMWARE_NOT_TRUSTED; the device keeps its session.
	Attest func(ctx context.Context, j job.Job, nonce []byte, h *devicewire.VerifiedHello) error
}

// Pusher provisions devices. It is safe for concurrent use.
type Pusher struct{ c Config }

// New checks c.
func New(c Config) (*Pusher, error) {
	if c.CA == nil || c.Signer.Key == nil || len(c.Signer.Chain) == 0 || c.ServerURL == "" {
		return nil, errors.New("pusher: CA, signer with chain and server URL are required")
	}
	if c.ConfigVersion == 0 {
		c.ConfigVersion = 1
	}
	if c.ESTURL != "" {
		if _, err := payload.ParseESTURL(c.ESTURL); err != nil {
			return nil, fmt.Errorf("pusher: EST URL: %w", err)
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return &Pusher{c: c}, nil
}

// refusalTimeout bounds telling a device it is refused: the outcome is the
// same whether it hears it or not (its session runs out otherwise).
const refusalTimeout = 10 * time.Second

// tellRefused tells the device, in the exchange its hello opened, that it
// will not be provisioned and why, so that its screen and audit log say so
// at once. Best effort: a device that does not hear it keeps its QR until
// the session runs out.
func (p *Pusher) tellRefused(ctx context.Context, client *deviceclient.Client, sessionNonce []byte, code failure.Code, why error) {
	ctx, cancel := context.WithTimeout(ctx, refusalTimeout)
	defer cancel()
	_, _ = client.Refuse(ctx, sessionNonce, code, why.Error())
}

// Provision implements job.Provisioner. Once the client certificate is
// issued, j.Issued is called before anything else, and every return (error
// or not) reports the certificate and its fate in the Outcome.
func (p *Pusher) Provision(ctx context.Context, j job.Job, progress func(job.Progress)) (job.Outcome, error) {
	start := time.Now()
	if progress == nil {
		progress = func(job.Progress) {}
	}
	client := deviceclient.New(j.Address, j.IdentityKey, j.DeviceID, deviceclient.Opts{Certificate: p.c.Signer.TLSCertificate(), Dial: p.c.Dial})
	defer client.Close()

	progress(job.Progress{Step: "hello"})
	var nonce []byte
	if p.c.Attest != nil {
		nonce = make([]byte, devicewire.AttestationNonceSize)
		if _, err := io.ReadFull(p.c.Rand, nonce); err != nil {
			return job.Outcome{DeviceUntouched: true}, failure.New(failure.Internal, "hello: attestation nonce", err)
		}
	}
	h, err := client.AttestedHello(ctx, j.Token, nonce)
	if err != nil {
		code, untouched, why := p.helloFailure(j, err)
		return job.Outcome{DeviceUntouched: untouched}, failure.New(code, "hello", fmt.Errorf("%s: %w", why, err))
	}
	if p.c.Attest != nil {
		progress(job.Progress{Step: "attest firmware"})
		if err := p.c.Attest(ctx, j, nonce, h); err != nil {
			p.tellRefused(ctx, client, h.SessionNonce, failure.FirmwareNotTrusted, err)
			return job.Outcome{Code: failure.FirmwareNotTrusted, Message: err.Error()}, failure.New(failure.FirmwareNotTrusted, "attest firmware", err)
		}
	}

	progress(job.Progress{Step: "issue certificate"})
	now := p.c.Now()
	cert, err := p.c.CA.IssueClient(h.CSR, j.DeviceID, now)
	if err != nil {
		return job.Outcome{}, failure.New(failure.CertificateInvalid, "issue client certificate", err)
	}
	// From here on, every return carries the certificate and its fate.
	undelivered := job.Outcome{CertificateDER: cert.Raw, Fate: job.NotDelivered}
	if j.Issued != nil {
		if err := j.Issued(ctx, cert); err != nil {
			return undelivered, failure.New(failure.Internal, "record certificate", err)
		}
	}

	progress(job.Progress{Step: "sign and seal"})
	env, err := p.seal(j, h, cert, now)
	if err != nil {
		return undelivered, err
	}

	progress(job.Progress{Step: "push"})
	reachedTest := false
	final, err := client.PushConfig(ctx, env, func(pr devicewire.Progress) {
		if pr.State == state.TestingConnection.String() {
			reachedTest = true
		}
		progress(job.Progress{State: pr.State, Step: pr.Step})
	})
	if err != nil {
		out, err := undelivered, deviceError("push", err)
		var re *deviceclient.RefusedError
		if errors.As(err, &re) {
			out.Fate = job.DeviceRefused
		}
		return out, err
	}
	out := job.Outcome{State: final.State, CertificateDER: cert.Raw, Fate: job.InUse, Elapsed: time.Since(start)}
	if final.Error != nil {
		out.Code, _ = failure.Parse(final.Error.Code)
		out.Message = final.Error.Message
	}
	if out.State != state.Provisioned.String() || final.Error != nil {
		out.Fate = job.DeviceRefused
		if reachedTest || out.Code == failure.ConnectionFailed {
			out.Fate = job.ConnectionTestFailed
		}
	}
	return out, nil
}

// seal builds the payload for cert, signs it and seals it to the device.
func (p *Pusher) seal(j job.Job, h *devicewire.VerifiedHello, cert *x509.Certificate, now time.Time) ([]byte, error) {
	cfg := payload.Config{
		ServerURL:         p.c.ServerURL,
		CACertificate:     base64.StdEncoding.EncodeToString(p.c.CA.Certificate().Raw),
		ClientCertificate: base64.StdEncoding.EncodeToString(cert.Raw),
		DeviceID:          j.DeviceID,
		DeviceLabel:       j.Label,
		Timestamp:         now.UTC().Format(time.RFC3339),
		PairingCode:       j.PairingCode,
		SessionNonce:      base64.RawURLEncoding.EncodeToString(h.SessionNonce),
		ConfigVersion:     p.c.ConfigVersion,
	}
	if p.c.ESTURL != "" {
		cfg.PayloadVersion, cfg.ESTURL = payload.Version, p.c.ESTURL
	}
	for _, c := range p.c.Signer.Chain {
		cfg.SignerChain = append(cfg.SignerChain, base64.StdEncoding.EncodeToString(c.Raw))
	}
	if p.c.Tamper != nil {
		p.c.Tamper(&cfg)
	}
	if err := payload.Sign(&cfg, p.c.Signer.Key, p.c.Rand); err != nil {
		return nil, failure.New(failure.Internal, "sign payload", err)
	}
	if p.c.TamperSigned != nil {
		p.c.TamperSigned(&cfg)
	}
	plain, err := cfg.Marshal()
	if err != nil {
		return nil, failure.New(failure.Internal, "encode payload", err)
	}
	env, err := payload.Seal(h.PayloadKey, h.SessionNonce, plain)
	clear(plain)
	if err != nil {
		return nil, failure.New(failure.Internal, "seal payload", err)
	}
	if p.c.TamperEnvelope != nil {
		env = p.c.TamperEnvelope(env)
	}
	return env, nil
}

// TLS alerts with which a device refuses the Central Station's
// certificate (RFC 8446 section 6.2); Go's TLS server sends
// bad_certificate when the endpoint's chain check fails.
var certificateAlerts = map[uint8]bool{
	42:  true, // bad_certificate
	43:  true, // unsupported_certificate
	44:  true, // certificate_revoked
	45:  true, // certificate_expired
	46:  true, // certificate_unknown
	48:  true, // unknown_ca
	49:  true, // access_denied
	116: true, // certificate_required
}

// helloFailure says why the hello failed: the failure code, whether the
// device is untouched (it never opened an exchange: nothing of the QR or
// code was spent on it), and what happened in words.
func (p *Pusher) helloFailure(j job.Job, err error) (code failure.Code, untouched bool, why string) {
	var re *deviceclient.RefusedError
	var ce *deviceclient.ConnectError
	alert, alerted := deviceclient.RemoteAlert(err)
	switch {
	case errors.As(err, &re):
		return re.Code(), true, "the device refused the hello"
	case errors.Is(err, deviceclient.ErrIdentityMismatch):
		return failure.IdentityMismatch, true, "the device at " + j.Address + " is not " + j.DeviceID + " (its identity key is not the enrolled one)"
	case alerted && certificateAlerts[alert]:
		return failure.SignerUntrusted, true, "the device refused this Central Station's provisioning certificate: it trusts another Central Station's provisioning root"
	case errors.Is(err, syscall.ECONNREFUSED):
		if !j.ExpiresAt.IsZero() && !p.c.Now().Before(j.ExpiresAt) {
			return failure.SessionExpired, true, "the device's provisioning port is closed and the QR expired at " + j.ExpiresAt.UTC().Format(time.RFC3339)
		}
		return failure.DeviceNotListening, true, "the device's provisioning port is closed: it is not waiting for a pairing (its session ended, or it was never started)"
	case errors.As(err, &ce):
		return failure.ConnectionFailed, true, "device unreachable"
	}
	// The request may have reached the device: what it did with it is not
	// known, so nothing is released.
	return failure.ConnectionFailed, false, "device unreachable"
}

// deviceError keeps the device's own failure code when it refused.
func deviceError(step string, err error) error {
	var re *deviceclient.RefusedError
	if errors.As(err, &re) {
		return failure.New(re.Code(), step, err)
	}
	return failure.New(failure.ConnectionFailed, step, fmt.Errorf("device unreachable: %w", err))
}

var _ job.Provisioner = (*Pusher)(nil)
