package engine

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"

	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/endpoint"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/proto/devicewire"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// pendingHello is the exchange a config push must belong to.
type pendingHello struct {
	gen   int
	nonce []byte
	key   keys.ClientKey
	// signer is the hello's client certificate (DER): the push must come
	// with the very same certificate, not merely one with the same name.
	signer []byte
}

func (e *Engine) closeEndpoint() {
	if !e.srv.Listening() {
		return
	}
	e.srv.Close() // returns at once: the connections end on their own goroutines
	e.recordRefusals(true)
	e.record(audit.Event{Event: "PORT_CLOSED"})
	e.publish()
}

func peerName(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	return c.Subject.CommonName
}

func (e *Engine) hello(ctx context.Context, req devicewire.HelloRequest, peer *x509.Certificate) (devicewire.HelloResponse, error) {
	var gen int
	var err error
	if derr := e.doCtx(ctx, func() { gen, err = e.admitHello(req.PairingToken, peerName(peer)) }); derr != nil {
		return devicewire.HelloResponse{}, failure.New(failure.Internal, "hello", derr)
	}
	if err != nil {
		return devicewire.HelloResponse{}, err
	}
	// TPM work happens here, off the owner goroutine.
	ck, err := e.d.Keys.NewClientKey()
	if err != nil {
		return devicewire.HelloResponse{}, failure.New(failure.Internal, "hello: client key", err)
	}
	csr, err := x509.CreateCertificateRequest(e.d.Rand, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: e.opts.DeviceID, SerialNumber: e.opts.DeviceSerial},
	}, ck)
	if err != nil {
		_ = ck.Discard()
		return devicewire.HelloResponse{}, failure.New(failure.Internal, "hello: CSR", err)
	}
	nonce := make([]byte, devicewire.NonceSize)
	if _, err := io.ReadFull(e.d.Rand, nonce); err != nil {
		_ = ck.Discard()
		return devicewire.HelloResponse{}, failure.New(failure.Internal, "hello: nonce", err)
	}
	h, err := devicewire.NewAttestedHello(e.d.Keys.Identity(), e.opts.DeviceID, nonce, e.d.Keys.PayloadKey().PublicKey(), csr, e.attestation(req))
	if err != nil {
		_ = ck.Discard()
		return devicewire.HelloResponse{}, failure.New(failure.Internal, "hello", err)
	}
	if derr := e.doCtx(ctx, func() { err = e.installHello(gen, nonce, ck, peer) }); derr != nil {
		_ = ck.Discard()
		return devicewire.HelloResponse{}, failure.New(failure.Internal, "hello", derr)
	}
	if err != nil {
		_ = ck.Discard()
		return devicewire.HelloResponse{}, err
	}
	return h, nil
}

// admitHello checks that a hello may proceed and returns the session
// generation it belongs to.
func (e *Engine) admitHello(token, peer string) (int, error) {
	if e.st != state.ReadyToPair || e.sess == nil {
		return 0, failure.Errorf(failure.SessionExpired, "hello", "device is %s, not ready to pair", e.st)
	}
	now := e.d.Clock.Now()
	if token != "" {
		if err := e.sess.CheckToken(token, now); err != nil {
			e.record(audit.Event{Event: "TOKEN_REFUSED", Code: failure.CodeOf(err).String(), Actor: "central-station:" + peer, Reason: err.Error()})
			return 0, err
		}
	}
	if e.hellos >= e.opts.MaxHellos {
		return 0, failure.Errorf(failure.TooManyAttempts, "hello", "%d hello exchanges in this session, limit %d", e.hellos, e.opts.MaxHellos)
	}
	e.hellos++
	how := "scanned token"
	if token == "" {
		how = "typed pairing code"
	}
	e.record(audit.Event{Event: "HELLO", Actor: "central-station:" + peer, Reason: how})
	return e.sessGen, nil
}

func (e *Engine) installHello(gen int, nonce []byte, ck keys.ClientKey, peer *x509.Certificate) error {
	if e.st != state.ReadyToPair || e.sess == nil || gen != e.sessGen {
		return failure.Errorf(failure.SessionMismatch, "hello", "pairing session ended during hello")
	}
	if e.pending != nil && e.pending.key != nil {
		if err := e.pending.key.Discard(); err != nil {
			e.record(audit.Event{Event: "CLIENT_KEY_DISCARD_FAILED", Reason: err.Error()})
		}
	}
	var signer []byte
	if peer != nil {
		signer = peer.Raw
	}
	e.pending = &pendingHello{gen: gen, nonce: nonce, key: ck, signer: signer}
	return nil
}

func (e *Engine) config(ctx context.Context, envelope []byte, peer *x509.Certificate) (<-chan devicewire.Progress, error) {
	var ch chan devicewire.Progress
	var err error
	if derr := e.doCtx(ctx, func() { ch, err = e.acceptConfig(envelope, peer) }); derr != nil {
		return nil, failure.New(failure.Internal, "config", derr)
	}
	return ch, err
}

func (e *Engine) acceptConfig(envelope []byte, cert *x509.Certificate) (chan devicewire.Progress, error) {
	peer := peerName(cert)
	switch {
	case e.st.Busy():
		return nil, failure.Errorf(failure.SessionMismatch, "config", "a configuration is already being processed")
	case e.st != state.ReadyToPair || e.sess == nil:
		return nil, failure.Errorf(failure.SessionExpired, "config", "device is %s, not ready to pair", e.st)
	case e.pending == nil || e.pending.gen != e.sessGen:
		return nil, failure.Errorf(failure.SessionMismatch, "config", "no hello in this pairing session")
	case cert == nil || !bytes.Equal(e.pending.signer, cert.Raw):
		// The certificate itself, not its name: another certificate
		// with the same subject (a second signer, a re-issued one) is
		// another signer.
		return nil, failure.Errorf(failure.SessionMismatch, "config", "pushed with another signer certificate than the hello's")
	}
	e.progress = make(chan devicewire.Progress, 16)
	e.pushStart = e.d.Clock.Now()
	ch := e.progress
	e.envelope = append([]byte(nil), envelope...)
	e.record(audit.Event{Event: "CONFIG_RECEIVED", Actor: "central-station:" + peer, Reason: fmt.Sprintf("%d-byte envelope", len(envelope))})
	// Entering PAIRING_RECEIVED starts the validation of e.envelope.
	if err := e.handle(state.ConfigReceived, "central-station:"+peer, nil); err != nil {
		e.envelope = nil
		close(ch)
		e.progress = nil
		return nil, failure.New(failure.Internal, "config", err)
	}
	return ch, nil
}

func (e *Engine) refuse(ctx context.Context, code failure.Code, nonce []byte, reason string, peer *x509.Certificate) error {
	var err error
	if derr := e.doCtx(ctx, func() { err = e.acceptRefusal(code, nonce, reason, peer) }); derr != nil {
		return failure.New(failure.Internal, "refusal", derr)
	}
	return err
}

// acceptRefusal takes the Central Station's refusal of this session's
// exchange (firmware not trusted): PROVISIONING_FAILED with its code, so
// the screen says it at once instead of a QR that will never pair. Only the
// hello's signer, with the very certificate and the hello's session nonce,
// may refuse; anything else is refused and audited.
func (e *Engine) acceptRefusal(code failure.Code, nonce []byte, reason string, cert *x509.Certificate) error {
	peer := peerName(cert)
	reason = audit.Sanitize(reason)
	var err error
	switch {
	case e.st.Busy():
		err = failure.Errorf(failure.SessionMismatch, "refusal", "a configuration is being processed")
	case e.st != state.ReadyToPair || e.sess == nil:
		err = failure.Errorf(failure.SessionExpired, "refusal", "device is %s, not ready to pair", e.st)
	case e.pending == nil || e.pending.gen != e.sessGen:
		err = failure.Errorf(failure.SessionMismatch, "refusal", "no hello in this pairing session")
	case cert == nil || !bytes.Equal(e.pending.signer, cert.Raw):
		err = failure.Errorf(failure.SessionMismatch, "refusal", "sent with another signer certificate than the hello's")
	case !devicewire.SameNonce(nonce, e.pending.nonce):
		err = failure.Errorf(failure.SessionMismatch, "refusal", "names another exchange than this session's hello")
	}
	if err != nil {
		e.record(audit.Event{Event: "REFUSAL_IGNORED", Code: code.String(), Actor: "central-station:" + peer, Reason: err.Error()})
		return err
	}
	e.record(audit.Event{Event: "CENTRAL_REFUSED", Code: code.String(), Actor: "central-station:" + peer, Reason: reason})
	if err := e.handle(state.CentralRefused, "central-station:"+peer, failure.Errorf(code, "central station", "%s", reason)); err != nil {
		return failure.New(failure.Internal, "refusal", err)
	}
	return nil
}

func (e *Engine) emit() {
	if e.progress == nil {
		return
	}
	p := devicewire.Progress{State: e.st.String(), Step: e.step, Elapsed: e.d.Clock.Now().Sub(e.pushStart).Milliseconds()}
	select {
	case e.progress <- p:
	default:
	}
}

func (e *Engine) finishProgress() {
	if e.progress == nil {
		return
	}
	// Whoever reads the final line may ask for the status next: it must
	// already say the final state.
	e.publish()
	p := devicewire.Progress{State: e.st.String(), Final: true, Elapsed: e.d.Clock.Now().Sub(e.pushStart).Milliseconds()}
	if e.st == state.ProvisioningFailed && e.lastErr != nil {
		c := failure.CodeOf(e.lastErr)
		p.Error = &devicewire.ErrorBody{Code: c.String(), Message: c.Title() + ": " + c.UserAction()}
	}
	select {
	case e.progress <- p:
	default:
	}
	close(e.progress)
	e.progress = nil
}

// endpointDevice is the engine as the provisioning endpoint sees it.
type endpointDevice struct{ e *Engine }

func (d endpointDevice) Hello(ctx context.Context, req devicewire.HelloRequest, peer *x509.Certificate) (devicewire.HelloResponse, error) {
	return d.e.hello(ctx, req, peer)
}

func (d endpointDevice) Config(ctx context.Context, envelope []byte, peer *x509.Certificate) (<-chan devicewire.Progress, error) {
	return d.e.config(ctx, envelope, peer)
}

func (d endpointDevice) Refuse(ctx context.Context, code failure.Code, nonce []byte, reason string, peer *x509.Certificate) error {
	return d.e.refuse(ctx, code, nonce, reason, peer)
}

func (d endpointDevice) Status() devicewire.Status {
	s := d.e.Status()
	p := devicewire.Status{State: s.State.String(), Step: s.Step}
	if s.LastError != failure.None {
		p.Error = &devicewire.ErrorBody{Code: s.LastError.String(), Message: s.LastError.Title() + ": " + s.LastError.UserAction()}
	}
	return p
}

var _ endpoint.Device = endpointDevice{}
