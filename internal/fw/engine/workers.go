package engine

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/conncheck"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/fw/settings"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/payload"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// recheckConnection runs the connection test of a provisioned device after
// boot; the result is audited and shown in status (Status.ConnCheck), the
// state stays.
// p is never changed (a new commit or a factory reset replaces e.current).
func (e *Engine) recheckConnection(ctx context.Context, p *settings.Provisioning) {
	var res conncheck.Result
	key, err := e.keyOf(p)
	if err == nil {
		res, err = e.connect(ctx, p.ServerURL, p.CACertDER, p.ClientCertDER, key)
		e.observeFrom(sourceMonitoring, res.Date)
	}
	e.post(func() {
		if e.current != p {
			return // factory reset meanwhile: the result is of no configuration
		}
		e.check = e.connCheck(*p, err)
		e.renewal.revoked = failure.CodeOf(err) == failure.CertificateRevoked
		e.show()
		ev := audit.Event{Event: "CONNECTION_CHECK_PASSED", Reason: e.check.Server}
		if err != nil {
			ev = audit.Event{Event: "CONNECTION_CHECK_FAILED", Code: failure.CodeOf(err).String(), Reason: err.Error()}
		}
		e.record(ev)
	})
}

// connCheck describes a connection test of p that ended now.
func (e *Engine) connCheck(p settings.Provisioning, err error) conncheck.Last {
	wall, trusted := e.d.Wall.Now()
	c := conncheck.Last{Verdict: conncheck.Passed, At: wall, ClockTrusted: trusted, Server: p.ServerHost()}
	if err != nil {
		c.Verdict, c.Detail = conncheck.Failed, audit.Sanitize(err.Error())
	}
	return c
}

func (e *Engine) startValidation() {
	env, p, gen, ctx := e.envelope, e.pending, e.sessGen, e.ctx
	e.envelope = nil
	go func() {
		v, err := payload.Verify(env, e.d.Keys.PayloadKey(), payload.Expect{
			Anchors:      e.d.Anchors,
			DeviceID:     e.opts.DeviceID,
			SessionNonce: p.nonce,
			CheckPairingCode: func(typed string) error {
				var r error
				if derr := e.do(func() { r = e.checkCode(gen, typed) }); derr != nil {
					return failure.New(failure.Internal, "check pairing code", derr)
				}
				return r
			},
			Wall:      e.d.Wall,
			ClientKey: p.key.Public(),
		})
		_ = ctx
		if err == nil {
			// A verified, session-bound payload's timestamp is a time
			// the Central Station vouches for: the last known good time.
			e.observe(v.Time)
		}
		e.post(func() { e.validated(gen, v, err) })
	}()
}

func (e *Engine) checkCode(gen int, typed string) error {
	if gen != e.sessGen || e.sess == nil {
		return failure.Errorf(failure.SessionMismatch, "check pairing code", "pairing session ended")
	}
	return e.sess.CheckCode(typed, e.d.Clock.Now())
}

func (e *Engine) validated(gen int, v *payload.Verified, err error) {
	if e.st != state.PairingReceived || gen != e.sessGen {
		return
	}
	if err != nil {
		e.handle(state.ValidationFailed, "device", err)
		return
	}
	e.verified = v
	e.record(audit.Event{Event: "CONFIG_VERIFIED", Reason: fmt.Sprintf("config version %d for %s", v.ConfigVersion, v.ServerURL.Host)})
	e.handle(state.ValidationPassed, "device", nil)
}

func (e *Engine) startApply() {
	v, p, gen := e.verified, e.pending, e.sessGen
	slot, _ := e.pairingSlot()
	go func() {
		key := p.key
		var imported keys.ClientKey
		var err error
		if v.ClientPrivateKey != "" {
			imported, err = e.importKey(v.ClientPrivateKey)
			if err == nil {
				key = imported
			}
		}
		if err == nil {
			wall, trusted := e.d.Wall.Now()
			estURL := ""
			if v.ESTURL != nil {
				estURL = v.ESTURL.String()
			}
			err = e.d.Settings.Stage(settings.Provisioning{
				ESTURL:        estURL,
				ServerURL:     v.ServerURL.String(),
				DeviceLabel:   v.DeviceLabel,
				DeviceID:      v.DeviceID,
				CACertDER:     v.CACert.Raw,
				ClientCertDER: v.ClientCert.Raw,
				ClientKeyRef:  slot.Ref(),
				ConfigVersion: v.ConfigVersion,
				ProvisionedAt: wall,
				ClockTrusted:  trusted,
			})
			if err != nil {
				err = failure.New(failure.ApplyFailed, "stage settings", err)
			}
		}
		e.post(func() { e.applied(gen, key, imported, err) })
	}()
}

// importKey puts the payload's clientPrivateKey under the key store's
// protection and wipes the plaintext.
func (e *Engine) importKey(b64 string) (keys.ClientKey, error) {
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, failure.New(failure.CertificateInvalid, "import client key", errors.New("clientPrivateKey is not base64"))
	}
	defer clear(der)
	k, err := e.d.Keys.ImportClientKey(der)
	if err != nil {
		return nil, failure.New(failure.ApplyFailed, "import client key", err)
	}
	return k, nil
}

func (e *Engine) applied(gen int, key, imported keys.ClientKey, err error) {
	if e.st != state.ApplyingConfig || gen != e.sessGen {
		if imported != nil {
			_ = imported.Discard()
		}
		return
	}
	if imported != nil && e.pending.key != nil {
		_ = e.pending.key.Discard()
	}
	e.pending.key = nil
	e.clientKey = key
	if err != nil {
		e.handle(state.ApplyFailed, "device", err)
		return
	}
	e.handle(state.ApplySucceeded, "device", nil)
}

func (e *Engine) startConnectionTest() {
	v, key, gen, ctx := e.verified, e.clientKey, e.sessGen, e.ctx
	slot, fallback := e.pairingSlot()
	go func() {
		res, err := e.connect(ctx, v.ServerURL.String(), v.CACert.Raw, v.ClientCert.Raw, key)
		e.observeFrom(sourceMonitoring, res.Date)
		var cur settings.Provisioning
		if err == nil {
			cur, err = e.commit(key, slot, fallback)
		}
		e.post(func() { e.connected(gen, cur, err) })
	}()
}

// commit makes the provisioning permanent: the client key to slot first,
// then the settings in one transaction. If the settings fail the key is
// forgotten, so the device is never left half-provisioned. A
// re-provisioning (fallback: the slot of the provisioning still
// committed) keeps the fallback's key until the settings have switched,
// then evicts it; a power cut before the switch leaves the fallback in
// force (the boot evicts the new slot's key), after it the new pair.
func (e *Engine) commit(key keys.ClientKey, slot keys.Slot, fallback *keys.Slot) (settings.Provisioning, error) {
	if fallback != nil {
		if err := e.d.Keys.ForgetClientKeyAt(slot); err != nil {
			return settings.Provisioning{}, failure.New(failure.ApplyFailed, "clear key slot "+slot.String(), err)
		}
	}
	if err := key.CommitTo(slot); err != nil {
		return settings.Provisioning{}, failure.New(failure.ApplyFailed, "commit client key", err)
	}
	if err := e.d.Settings.Commit(); err != nil {
		_ = e.d.Keys.ForgetClientKeyAt(slot)
		return settings.Provisioning{}, failure.New(failure.ApplyFailed, "commit settings", err)
	}
	cur, ok, err := e.d.Settings.Current()
	if err != nil || !ok {
		return settings.Provisioning{}, failure.Errorf(failure.ApplyFailed, "commit settings", "committed settings unreadable: %v", err)
	}
	if fallback != nil {
		if err := e.d.Keys.ForgetClientKeyAt(*fallback); err != nil {
			e.record(audit.Event{Event: "REPROVISION_OLD_KEY_LEFT", Reason: fmt.Sprintf("slot %s: %v (the next boot evicts it)", fallback, err)})
		}
	}
	return cur, nil
}

func (e *Engine) connected(gen int, cur settings.Provisioning, err error) {
	if e.st != state.TestingConnection || gen != e.sessGen {
		return
	}
	if err != nil {
		e.handle(state.ConnectionFailed, "device", err)
		return
	}
	e.clientKey = nil // committed: no longer ours to discard
	e.current = &cur
	e.check = e.connCheck(cur, nil)
	e.handle(state.ConnectionSucceeded, "device", nil)
}

// connect runs the connection test with the given configuration and key.
func (e *Engine) connect(ctx context.Context, serverURL string, caDER, certDER []byte, key crypto.Signer) (conncheck.Result, error) {
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return conncheck.Result{}, failure.New(failure.CertificateInvalid, "connection test: CA certificate", err)
	}
	leaf, err := x509.ParseCertificate(certDER)
	if err != nil {
		return conncheck.Result{}, failure.New(failure.CertificateInvalid, "connection test: client certificate", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return conncheck.Run(ctx, e.connConfig(conncheck.Config{
		ServerURL:  serverURL,
		CA:         pool,
		ClientCert: tls.Certificate{Certificate: [][]byte{certDER}, Leaf: leaf, PrivateKey: key},
	}))
}

// keyOf is the committed client key p names (its slot).
func (e *Engine) keyOf(p *settings.Provisioning) (crypto.Signer, error) {
	slot, err := keys.SlotOfRef(p.ClientKeyRef)
	if err != nil {
		return nil, failure.New(failure.Internal, "connection test: client key", err)
	}
	k, err := e.d.Keys.ClientKeyAt(slot)
	if err != nil {
		return nil, failure.New(failure.Internal, "connection test: client key", err)
	}
	return k, nil
}

// connConfig fills in the connection test's tunables.
func (e *Engine) connConfig(c conncheck.Config) conncheck.Config {
	c.HealthPath, c.Attempts, c.AttemptTimeout, c.Backoff = e.opts.HealthPath, e.opts.ConnAttempts, e.opts.ConnTimeout, e.opts.ConnBackoff
	c.Dial, c.Sleep, c.Now = e.d.Dial, e.d.ConnSleep, e.wallNow
	return c
}
