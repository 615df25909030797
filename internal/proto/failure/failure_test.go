package failure

import (
	"errors"
	"fmt"
	"testing"
)

func TestEveryCodeHasTextAndRoundTrips(t *testing.T) {
	seen := map[string]Code{}
	for c := None; c < codeCount; c++ {
		id := c.String()
		if id == "" || c.Title() == "" {
			t.Errorf("code %d has no identifier or title", int(c))
		}
		if c != None && c.UserAction() == "" {
			t.Errorf("%s has no user action", c)
		}
		if prev, dup := seen[id]; dup {
			t.Errorf("%s used by %d and %d", id, int(prev), int(c))
		}
		seen[id] = c
		got, err := Parse(id)
		if err != nil || got != c {
			t.Errorf("Parse(%q) = %v, %v", id, got, err)
		}
	}
	if _, err := Parse("NOPE"); err == nil {
		t.Error("Parse accepted an unknown code")
	}
}

func TestSpecTable(t *testing.T) {
	// DOC-PROC-001 section 6: error and user action.
	want := map[Code][2]string{
		PairingCodeMismatch: {"Pairing code mismatch", "Re-scan QR code"},
		PayloadExpired:      {"Payload expired", "Request new provisioning"},
		SignatureInvalid:    {"Signature invalid", "Contact IT support"},
		CertificateInvalid:  {"Certificate invalid", "Contact IT support"},
		ConnectionFailed:    {"Connection failed", "Check network, retry"},
	}
	for c, w := range want {
		if c.Title() != w[0] || c.UserAction() != w[1] {
			t.Errorf("%s: got %q / %q, want %q / %q", c, c.Title(), c.UserAction(), w[0], w[1])
		}
	}
}

func TestCodeOf(t *testing.T) {
	base := errors.New("boom")
	wrapped := fmt.Errorf("outer: %w", New(SignatureInvalid, "verify signature", base))
	if got := CodeOf(wrapped); got != SignatureInvalid {
		t.Errorf("CodeOf(wrapped) = %v", got)
	}
	if !errors.Is(wrapped, base) {
		t.Error("cause lost in the chain")
	}
	if CodeOf(nil) != None || CodeOf(base) != Internal {
		t.Error("CodeOf of nil or a plain error is wrong")
	}
	if Code(99).String() != "CODE(99)" {
		t.Errorf("out of range code: %q", Code(99).String())
	}
	if got := New(PayloadExpired, "check freshness", base).Error(); got != "check freshness: PAYLOAD_EXPIRED: boom" {
		t.Errorf("Error() = %q", got)
	}
}
