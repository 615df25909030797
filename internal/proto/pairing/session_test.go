package pairing

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/proto/failure"
)

var (
	t0   = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC) // monotonic stand-in
	wall = time.Date(2026, 11, 25, 14, 20, 0, 700e6, time.UTC)
)

func opts(k crypto.Signer) SessionOpts {
	return SessionOpts{DeviceID: "ZM-001", DeviceSerial: "SN-2024-001234", IPAddress: "192.168.1.100", FirmwareVersion: "1.2.3", Signer: k}
}

func newSession(t *testing.T, o SessionOpts) *Session {
	t.Helper()
	s, err := NewSession(t0, wall, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantCode(t *testing.T, err error, code failure.Code, text string) {
	t.Helper()
	if failure.CodeOf(err) != code {
		t.Fatalf("err = %v, want %s", err, code)
	}
	if !strings.Contains(err.Error(), text) {
		t.Fatalf("err = %q, want it to mention %q", err, text)
	}
}

func TestNewSessionDefaults(t *testing.T) {
	k := newKey(t)
	s := newSession(t, opts(k))
	q := s.QR()
	if q.ExpiresAt != "2026-11-25T14:30:00Z" {
		t.Errorf("expiresAt = %s, want wall + 10 min truncated to the second", q.ExpiresAt)
	}
	if q.PairingCode != s.Code().Display() {
		t.Error("QR code differs from the session code")
	}
	if _, err := VerifyToken(&k.PublicKey, q); err != nil {
		t.Errorf("token: %v", err)
	}
	if err := q.Validate(); err != nil {
		t.Error(err)
	}
	if got := s.ExpiresAt(); !got.Equal(t0.Add(DefaultLifetime)) {
		t.Errorf("ExpiresAt = %v", got)
	}
	if got := s.NextRotation(); !got.Equal(t0.Add(DefaultRotation)) {
		t.Errorf("NextRotation = %v", got)
	}
	if got := s.Remaining(t0.Add(time.Minute)); got != 9*time.Minute {
		t.Errorf("Remaining = %v", got)
	}
}

func TestNewSessionErrors(t *testing.T) {
	k := newKey(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mod  func(*SessionOpts)
		want string
	}{
		{"negative lifetime", func(o *SessionOpts) { o.Lifetime = -time.Second }, "lifetime"},
		{"huge lifetime", func(o *SessionOpts) { o.Lifetime = 48 * time.Hour }, "lifetime"},
		{"rotation over lifetime", func(o *SessionOpts) { o.Lifetime, o.Rotation = time.Minute, 2*time.Minute }, "rotation"},
		{"rotation too fast", func(o *SessionOpts) { o.Rotation = time.Millisecond }, "rotation"},
		{"no signer", func(o *SessionOpts) { o.Signer = nil }, "no signer"},
		{"RSA signer", func(o *SessionOpts) { o.Signer = rsaKey }, "not ECDSA P-256"},
		{"no device id", func(o *SessionOpts) { o.DeviceID = "" }, "deviceId: empty"},
		{"no address", func(o *SessionOpts) { o.IPAddress = "" }, "ipAddress"},
		{"bad firmware", func(o *SessionOpts) { o.FirmwareVersion = "1 2" }, "firmwareVersion"},
		{"too big for the QR", func(o *SessionOpts) {
			o.DeviceID, o.DeviceSerial, o.FirmwareVersion = strings.Repeat("I", 32), strings.Repeat("S", 32), strings.Repeat("1", 32)
		}, "limit 331"},
		{"no randomness", func(o *SessionOpts) { o.Rand = bytes.NewReader(nil) }, "random source"},
		{"signer fails", func(o *SessionOpts) { o.Signer = &fixedSigner{pub: &k.PublicKey, err: errors.New("tpm gone")} }, "tpm gone"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := opts(k)
			tc.mod(&o)
			s, err := NewSession(t0, wall, o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewSession = %v, %v; want error with %q", s, err, tc.want)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	k := newKey(t)
	s := newSession(t, opts(k))
	now := t0
	tok1 := s.QR().PairingToken
	if err := s.CheckToken(tok1, now); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.CheckToken("", now), failure.TokenInvalid, "neither")

	now = now.Add(DefaultRotation)
	if err := s.Rotate(now); err != nil {
		t.Fatal(err)
	}
	tok2 := s.QR().PairingToken
	if tok2 == tok1 {
		t.Fatal("rotation kept the token")
	}
	if _, err := VerifyToken(&k.PublicKey, s.QR()); err != nil {
		t.Fatalf("rotated token: %v", err)
	}
	if s.QR().PairingCode != s.Code().Display() {
		t.Error("rotation changed the code")
	}
	if !s.NextRotation().Equal(now.Add(DefaultRotation)) {
		t.Errorf("NextRotation = %v", s.NextRotation())
	}
	for _, tok := range []string{tok1, tok2} {
		if err := s.CheckToken(tok, now); err != nil {
			t.Errorf("current or previous token refused: %v", err)
		}
	}

	now = now.Add(DefaultRotation)
	if err := s.Rotate(now); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.CheckToken(tok1, now), failure.TokenInvalid, "neither the current nor the previous")
	if err := s.CheckToken(tok2, now); err != nil {
		t.Errorf("previous token refused: %v", err)
	}
	if err := s.CheckToken(s.QR().PairingToken, now); err != nil {
		t.Errorf("current token refused: %v", err)
	}
	// A token of another session of the same device is refused.
	other := newSession(t, opts(k))
	wantCode(t, s.CheckToken(other.QR().PairingToken, now), failure.TokenInvalid, "neither")
}

func TestRotateFailureKeepsTokens(t *testing.T) {
	k := newKey(t)
	sig := &switchSigner{Signer: k}
	o := opts(sig)
	s := newSession(t, o)
	tok := s.QR().PairingToken
	sig.fail = true
	now := t0.Add(DefaultRotation)
	if err := s.Rotate(now); err == nil {
		t.Fatal("Rotate succeeded with a failing signer")
	}
	if s.QR().PairingToken != tok {
		t.Error("failed rotation changed the token")
	}
	if !s.NextRotation().Equal(now.Add(DefaultRotation)) {
		t.Error("failed rotation did not move NextRotation (a re-armed timer would spin)")
	}
	if err := s.CheckToken(tok, now); err != nil {
		t.Errorf("token refused after a failed rotation: %v", err)
	}
}

type switchSigner struct {
	crypto.Signer
	fail bool
}

func (s *switchSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	if s.fail {
		return nil, errors.New("tpm: retry")
	}
	return s.Signer.Sign(r, d, o)
}

func TestExpiryBoundary(t *testing.T) {
	k := newKey(t)
	o := opts(k)
	o.Lifetime = 2 * time.Minute
	s := newSession(t, o)
	tok, code := s.QR().PairingToken, s.Code().Display()
	end := t0.Add(2 * time.Minute)
	before := end.Add(-time.Nanosecond)
	if s.Expired(before) || s.Remaining(before) != time.Nanosecond {
		t.Errorf("expired 1 ns early: %v %v", s.Expired(before), s.Remaining(before))
	}
	if err := s.CheckToken(tok, before); err != nil {
		t.Errorf("token refused 1 ns before expiry: %v", err)
	}
	if err := s.CheckCode(code, before); err != nil {
		t.Errorf("code refused 1 ns before expiry: %v", err)
	}
	if !s.Expired(end) || s.Remaining(end) != 0 || s.Remaining(end.Add(time.Hour)) != 0 {
		t.Error("not expired at the boundary")
	}
	wantCode(t, s.CheckToken(tok, end), failure.SessionExpired, "expired")
	wantCode(t, s.CheckCode(code, end), failure.SessionExpired, "expired")
}

func TestCheckCodeAttempts(t *testing.T) {
	k := newKey(t)
	s := newSession(t, opts(k))
	code := s.Code().Display()
	if err := s.CheckCode(strings.ToLower(code), t0); err != nil {
		t.Fatalf("right code (lower case) refused: %v", err)
	}
	wrong := []string{"", "AAA-000-AAA", "not a code", code[:10], code + "A"}
	left := []string{"4 attempts left", "3 attempts left", "2 attempts left", "1 attempt left"}
	for i, w := range wrong[:4] {
		err := s.CheckCode(w, t0)
		wantCode(t, err, failure.PairingCodeMismatch, left[i])
		if strings.Contains(err.Error(), code) || strings.Contains(err.Error(), code[:7]) {
			t.Fatalf("error %q reveals the code", err)
		}
	}
	// The right code still works before the fifth wrong one; it does not reset the count.
	if err := s.CheckCode(code, t0); err != nil {
		t.Fatalf("right code refused: %v", err)
	}
	wantCode(t, s.CheckCode(wrong[4], t0), failure.TooManyAttempts, "5 wrong pairing codes")
	wantCode(t, s.CheckCode(code, t0), failure.TooManyAttempts, "closed")
	wantCode(t, s.CheckToken(s.QR().PairingToken, t0), failure.TooManyAttempts, "closed")
	if err := s.Consume(); err == nil {
		t.Error("Consume after lockout succeeded")
	}
}

func TestConsumeAndClose(t *testing.T) {
	k := newKey(t)
	s := newSession(t, opts(k))
	tok, code := s.QR().PairingToken, s.Code().Display()
	if err := s.Consume(); err != nil {
		t.Fatal(err)
	}
	if err := s.Consume(); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Errorf("second Consume: %v", err)
	}
	wantCode(t, s.CheckToken(tok, t0), failure.SessionExpired, "already used")
	wantCode(t, s.CheckCode(code, t0), failure.SessionExpired, "already used")
	if err := s.Rotate(t0); err == nil {
		t.Error("Rotate on a used session succeeded")
	}

	s = newSession(t, opts(k))
	tok, code = s.QR().PairingToken, s.Code().Display()
	s.Close()
	s.Close()
	wantCode(t, s.CheckToken(tok, t0), failure.SessionExpired, "closed")
	wantCode(t, s.CheckCode(code, t0), failure.SessionExpired, "closed")
	if err := s.Consume(); err == nil {
		t.Error("Consume after Close succeeded")
	}

	// Consume takes no time: a push that finishes after the lifetime still
	// consumes its session.
	s = newSession(t, opts(k))
	if !s.Expired(t0.Add(time.Hour)) {
		t.Fatal("session not expired an hour later")
	}
	if err := s.Consume(); err != nil {
		t.Errorf("Consume after the lifetime: %v", err)
	}
}

// Secrets are compared in constant time: Matches, CheckToken and CheckCode
// compare only through crypto/subtle (directly or via equalCT/Matches) and
// never with ==, != or bytes.Equal on the secret.
func TestConstantTimeCompareUsed(t *testing.T) {
	fset := token.NewFileSet()
	want := map[string]string{
		"code.go:Matches":       "ConstantTimeCompare",
		"session.go:equalCT":    "ConstantTimeCompare",
		"session.go:CheckToken": "equalCT",
		"session.go:CheckCode":  "Matches",
	}
	secretish := func(e ast.Expr) bool {
		var found bool
		ast.Inspect(e, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok {
				switch strings.ToLower(id.Name) {
				case "token", "typed", "code", "previous", "pairingtoken", "a", "b":
					found = true
				}
			}
			return true
		})
		return found
	}
	for _, file := range []string{"code.go", "session.go"} {
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			call, ok := want[file+":"+fn.Name.Name]
			if !ok {
				continue
			}
			delete(want, file+":"+fn.Name.Name)
			var calls bool
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.SelectorExpr:
					if n.Sel.Name == call || n.Sel.Name == "Equal" && isIdent(n.X, "bytes") {
						calls = calls || n.Sel.Name == call
						if n.Sel.Name == "Equal" {
							t.Errorf("%s uses bytes.Equal", fn.Name.Name)
						}
					}
				case *ast.Ident:
					if n.Name == call {
						calls = true
					}
				case *ast.BinaryExpr:
					if (n.Op == token.EQL || n.Op == token.NEQ) && (secretish(n.X) && secretish(n.Y)) {
						t.Errorf("%s compares secrets with %s at %s", fn.Name.Name, n.Op, fset.Position(n.Pos()))
					}
				}
				return true
			})
			if !calls {
				t.Errorf("%s does not call %s", fn.Name.Name, call)
			}
		}
	}
	for k := range want {
		t.Errorf("%s not found", k)
	}
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}
