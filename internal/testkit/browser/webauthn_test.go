package browser

import (
	"crypto/x509"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
)

type passkeyResult struct {
	OK           bool   `json:"ok"`
	ID           string `json:"id"`
	User         string `json:"user"`
	UserPresent  bool   `json:"userPresent"`
	UserVerified bool   `json:"userVerified"`
	Name         string `json:"name"`
	Message      string `json:"message"`
}

func TestVirtualAuthenticatorHoldsAVerifiedPasskey(t *testing.T) {
	srv := NewServer(t, http.FileServer(http.Dir("testdata")))
	b := ForTest(t, Options{Trust: []*x509.Certificate{srv.Cert}})
	ctx := b.Tab(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.Origin+"/passkey.html"), chromedp.WaitReady(chromedp.CSS("main"))); err != nil {
		t.Fatal(err)
	}
	auth, err := AddPasskeyAuthenticator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	call := func(js string) passkeyResult {
		t.Helper()
		r, err := chromedp.Run(ctx, chromedp.Evaluate[passkeyResult](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	reg := call(`passkeyTest.register("tech-ada")`)
	if !reg.OK || !reg.UserPresent || !reg.UserVerified {
		t.Fatalf("register: %+v, want a credential made with user presence and verification", reg)
	}
	creds, err := auth.Credentials()
	if err != nil {
		t.Fatal(err)
	}
	if len(creds) != 1 || !creds[0].IsResidentCredential || creds[0].RpID != "localhost" {
		t.Fatalf("authenticator holds %d credentials (%+v), want one resident credential for localhost", len(creds), creds)
	}

	in := call(`passkeyTest.signIn()`)
	if !in.OK || in.ID != reg.ID || in.User != "tech-ada" || !in.UserVerified {
		t.Fatalf("sign-in: %+v, want the registered passkey (%s) of tech-ada, user verified", in, reg.ID)
	}

	// A failed PIN or fingerprint: the page gets an error, not a credential.
	if err := auth.SetUserVerified(false); err != nil {
		t.Fatal(err)
	}
	if in := call(`passkeyTest.signIn()`); in.OK || in.Name != "NotAllowedError" {
		t.Fatalf("sign-in with user verification failing: %+v, want NotAllowedError", in)
	}

	// The tablet loses its authenticator: no passkey to sign in with.
	if err := auth.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Credentials(); err == nil {
		t.Fatal("credentials of a removed authenticator: no error")
	}
}
