package pairing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/zmonitor/firmware/internal/proto/failure"
)

// Defaults and limits of a pairing session.
const (
	DefaultLifetime = 10 * time.Minute
	DefaultRotation = 30 * time.Second
	MaxLifetime     = 24 * time.Hour
	MinRotation     = time.Second
	// MaxWrongCodes is how many wrong pairing codes a session (and the
	// Lockout, across sessions) tolerates.
	MaxWrongCodes = 5
)

// SessionOpts configures a pairing session.
type SessionOpts struct {
	// DeviceID, DeviceSerial, IPAddress and FirmwareVersion are shown in the
	// QR; see the field limits and MaxQRBytes.
	DeviceID, DeviceSerial, IPAddress, FirmwareVersion string
	// Lifetime is how long the code and the QR are valid; 0 means
	// DefaultLifetime.
	Lifetime time.Duration
	// Rotation is how often the token changes; 0 means DefaultRotation.
	Rotation time.Duration
	// Signer is the device identity key (ECDSA P-256; the TPM in
	// production). Each rotation calls it once.
	Signer crypto.Signer
	// Rand is the source of the code and the nonces; nil means crypto/rand.
	Rand io.Reader
}

// Session is one pairing session: the code, the QR content with its rotating
// token, the expiry and the wrong-code count. All times are readings of the
// monotonic clock (clock.Clock.Now) passed in by the caller; the session
// starts no goroutine and no timer. It is not safe for concurrent use: the
// engine's goroutine owns it.
type Session struct {
	signer   crypto.Signer
	rand     io.Reader
	rotation time.Duration

	code     Code
	q        QRContent
	previous string // the token of the previous rotation, "" before the first

	expires  time.Time
	nextRot  time.Time
	wrong    int
	consumed bool
	closed   bool
	tooMany  bool
}

// NewSession starts a session at now (monotonic reading) and wallNow (wall
// time, used only for the expiresAt the QR shows, truncated to the second).
// It draws the code and the first token. The QR content must fit MaxQRBytes.
func NewSession(now, wallNow time.Time, o SessionOpts) (*Session, error) {
	if o.Lifetime == 0 {
		o.Lifetime = DefaultLifetime
	}
	if o.Rotation == 0 {
		o.Rotation = DefaultRotation
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	switch {
	case o.Lifetime < 0 || o.Lifetime > MaxLifetime:
		return nil, fmt.Errorf("pairing session: lifetime %s outside (0, %s]", o.Lifetime, MaxLifetime)
	case o.Rotation < MinRotation || o.Rotation > o.Lifetime:
		return nil, fmt.Errorf("pairing session: rotation %s outside [%s, lifetime %s]", o.Rotation, MinRotation, o.Lifetime)
	case o.Signer == nil:
		return nil, errors.New("pairing session: no signer")
	}
	if pub, ok := o.Signer.Public().(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("pairing session: %w", ErrTokenKey)
	}
	code, err := NewCode(o.Rand)
	if err != nil {
		return nil, fmt.Errorf("pairing session: %w", err)
	}
	s := &Session{
		signer:   o.Signer,
		rand:     o.Rand,
		rotation: o.Rotation,
		code:     code,
		q: QRContent{
			DeviceID:        o.DeviceID,
			DeviceSerial:    o.DeviceSerial,
			IPAddress:       o.IPAddress,
			PairingCode:     code.Display(),
			ExpiresAt:       wallNow.Add(o.Lifetime).UTC().Truncate(time.Second).Format(TimeLayout),
			FirmwareVersion: o.FirmwareVersion,
		},
		expires: now.Add(o.Lifetime),
		nextRot: now.Add(o.Rotation),
	}
	if err := s.q.validateFields(); err != nil {
		return nil, fmt.Errorf("pairing session: %w", err)
	}
	tok, err := SignToken(s.signer, s.rand, s.q)
	if err != nil {
		return nil, fmt.Errorf("pairing session: %w", err)
	}
	s.q.PairingToken = tok
	if n := len(s.q.Marshal()); n > MaxQRBytes {
		return nil, fmt.Errorf("pairing session: QR content is %d bytes, limit %d: shorten deviceId, deviceSerial or firmwareVersion", n, MaxQRBytes)
	}
	return s, nil
}

// Code returns the session's pairing code.
func (s *Session) Code() Code { return s.code }

// QR returns the content the QR code shows now.
func (s *Session) QR() QRContent { return s.q }

// Rotate replaces the token with a new one (new nonce, new signature); the
// replaced token stays acceptable as the previous one until the next
// rotation. NextRotation moves to now + rotation even when Rotate fails, so
// a caller that re-arms its timer from it does not spin; on failure the
// current and previous tokens are unchanged. Rotate on a consumed or closed
// session fails.
func (s *Session) Rotate(now time.Time) error {
	s.nextRot = now.Add(s.rotation)
	if s.closed || s.consumed {
		return errors.New("rotate pairing token: session ended")
	}
	tok, err := SignToken(s.signer, s.rand, s.q)
	if err != nil {
		return fmt.Errorf("rotate pairing token: %w", err)
	}
	s.previous, s.q.PairingToken = s.q.PairingToken, tok
	return nil
}

// NextRotation is when the token should rotate next (monotonic).
func (s *Session) NextRotation() time.Time { return s.nextRot }

// ExpiresAt is when the session expires (monotonic).
func (s *Session) ExpiresAt() time.Time { return s.expires }

// Remaining is the time left at now, never negative.
func (s *Session) Remaining(now time.Time) time.Duration {
	if d := s.expires.Sub(now); d > 0 {
		return d
	}
	return 0
}

// Expired reports whether the session has expired at now: from the expiry
// instant on, inclusive.
func (s *Session) Expired(now time.Time) bool { return !now.Before(s.expires) }

// usable returns the failure that stops the session from accepting a token
// or a code at now, or nil.
func (s *Session) usable(step string, now time.Time) error {
	switch {
	case s.tooMany:
		return failure.Errorf(failure.TooManyAttempts, step, "session closed after %d wrong pairing codes", MaxWrongCodes)
	case s.consumed:
		return failure.Errorf(failure.SessionExpired, step, "pairing session already used")
	case s.closed:
		return failure.Errorf(failure.SessionExpired, step, "pairing session closed")
	case s.Expired(now):
		return failure.Errorf(failure.SessionExpired, step, "pairing session expired")
	}
	return nil
}

// CheckToken accepts token only if it is the current token or the one of the
// immediately previous rotation, the session has not expired at now and is
// neither consumed nor closed. The comparison is constant time.
func (s *Session) CheckToken(token string, now time.Time) error {
	const step = "check pairing token"
	if err := s.usable(step, now); err != nil {
		return err
	}
	cur := equalCT(token, s.q.PairingToken)
	prev := equalCT(token, s.previous) & nonEmpty(s.previous)
	if cur|prev != 1 {
		return failure.Errorf(failure.TokenInvalid, step, "token is neither the current nor the previous one")
	}
	return nil
}

// CheckCode checks a pairing code (as typed or as carried in the payload)
// in constant time. A wrong code (including a malformed one) counts: the
// error says how many attempts are left, never the code; the MaxWrongCodes-th
// wrong code closes the session and returns failure.TooManyAttempts. A
// correct code does not consume the session (Consume does).
func (s *Session) CheckCode(typed string, now time.Time) error {
	const step = "check pairing code"
	if err := s.usable(step, now); err != nil {
		return err
	}
	if s.code.Matches(typed) {
		return nil
	}
	s.wrong++
	if s.wrong >= MaxWrongCodes {
		s.closed, s.tooMany = true, true
		return failure.Errorf(failure.TooManyAttempts, step, "%d wrong pairing codes; session closed", s.wrong)
	}
	left := MaxWrongCodes - s.wrong
	return failure.Errorf(failure.PairingCodeMismatch, step, "wrong pairing code; %d %s left", left, plural(left, "attempt", "attempts"))
}

// Consume marks the session used (one-time use): afterwards no token or code
// is accepted. It does not look at expiry (the configuration may finish
// after the session's lifetime). A second Consume, or Consume after Close,
// fails.
func (s *Session) Consume() error {
	switch {
	case s.consumed:
		return errors.New("consume pairing session: already used")
	case s.closed:
		return errors.New("consume pairing session: session closed")
	}
	s.consumed = true
	return nil
}

// Close ends the session; it may be called more than once.
func (s *Session) Close() { s.closed = true }

// equalCT returns 1 when a and b are equal, in time that depends only on
// their lengths.
func equalCT(a, b string) int { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) }

func nonEmpty(s string) int {
	if s == "" {
		return 0
	}
	return 1
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
