package devicewire

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/strictjson"
)

// RefusalType is the Type of a Refusal.
const RefusalType = "zmonitor-refusal-v1"

// MaxRefusal bounds a refusal's body.
const MaxRefusal = 1 << 10

// Refusal is the Central Station telling the device, after its hello, that
// it will not provision it (POST /v1/refusal, on the same mutual-TLS
// endpoint as the push and with the hello's signer certificate): the device
// shows the code's failure screen and audits it instead of waiting for a
// push that will never come. SessionNonce is the hello's, so a refusal
// belongs to one exchange and cannot be replayed into another.
type Refusal struct {
	Type         string `json:"type"`
	SessionNonce string `json:"sessionNonce"` // base64url, the hello's
	Code         string `json:"code"`
	// Reason is the Central Station's short, non-secret explanation, for
	// the device's audit log (at most MaxRefusalReason bytes).
	Reason string `json:"reason,omitempty"`
}

// MaxRefusalReason bounds Refusal.Reason.
const MaxRefusalReason = 512

// RefusableCodes are the codes a Central Station may send in a refusal:
// the ones about the device itself that it must show (a code about the
// tablet or the Central Station's own state is the tablet's to show).
var RefusableCodes = []failure.Code{failure.FirmwareNotTrusted}

// NewRefusal is the refusal of the exchange whose hello had sessionNonce.
func NewRefusal(sessionNonce []byte, code failure.Code, reason string) Refusal {
	if len(reason) > MaxRefusalReason {
		reason = reason[:MaxRefusalReason]
	}
	return Refusal{Type: RefusalType, SessionNonce: base64.RawURLEncoding.EncodeToString(sessionNonce), Code: code.String(), Reason: reason}
}

// ParseRefusal decodes and checks a refusal's body (strict JSON, a known
// refusable code, a session nonce of the right size).
func ParseRefusal(b []byte) (Refusal, failure.Code, []byte, error) {
	if len(b) > MaxRefusal {
		return Refusal{}, failure.None, nil, fmt.Errorf("refusal: %d bytes, limit %d", len(b), MaxRefusal)
	}
	var r Refusal
	if err := strictjson.Decode(b, &r); err != nil {
		return Refusal{}, failure.None, nil, fmt.Errorf("refusal: %w", err)
	}
	if r.Type != RefusalType {
		return Refusal{}, failure.None, nil, fmt.Errorf("refusal: type %q, want %q", r.Type, RefusalType)
	}
	nonce, err := base64.RawURLEncoding.DecodeString(r.SessionNonce)
	if err != nil || len(nonce) != NonceSize {
		return Refusal{}, failure.None, nil, errors.New("refusal: sessionNonce is not 32 bytes of base64url")
	}
	if len(r.Reason) > MaxRefusalReason {
		return Refusal{}, failure.None, nil, fmt.Errorf("refusal: reason longer than %d bytes", MaxRefusalReason)
	}
	for _, c := range RefusableCodes {
		if c.String() == r.Code {
			return r, c, nonce, nil
		}
	}
	return Refusal{}, failure.None, nil, fmt.Errorf("refusal: code %q is not one a Central Station may refuse a device with", r.Code)
}

// SameNonce compares a refusal's session nonce with the hello's in
// constant time.
func SameNonce(a, b []byte) bool { return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1 }
