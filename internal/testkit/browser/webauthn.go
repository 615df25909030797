package browser

import (
	"context"
	"fmt"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// Authenticator is a DevTools virtual authenticator attached to one tab: a
// platform authenticator (CTAP2, internal transport) that holds resident
// keys (passkeys) and performs user verification, as a tablet does with its
// PIN or biometrics. It answers presence checks at once.
type Authenticator struct {
	ctx context.Context // the tab
	ID  webauthn.AuthenticatorID
}

// AddPasskeyAuthenticator enables the WebAuthn domain in the tab of ctx and
// adds a virtual authenticator whose user verification succeeds.
func AddPasskeyAuthenticator(ctx context.Context) (*Authenticator, error) {
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{EnableUI: new(false)}); err != nil {
		return nil, fmt.Errorf("webauthn: enable: %w", err)
	}
	res, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol:                    webauthn.AuthenticatorProtocolCtap2,
			Ctap2version:                webauthn.Ctap2versionCtap21,
			Transport:                   webauthn.AuthenticatorTransportInternal,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              true,
			AutomaticPresenceSimulation: true,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("webauthn: add virtual authenticator: %w", err)
	}
	return &Authenticator{ctx: ctx, ID: res.AuthenticatorID}, nil
}

// SetUserVerified makes the next user verifications succeed or fail (a
// wrong PIN, an unrecognised finger).
func (a *Authenticator) SetUserVerified(ok bool) error {
	if _, err := chromedp.Call(a.ctx, webauthn.SetUserVerified, webauthn.SetUserVerifiedParams{AuthenticatorID: a.ID, IsUserVerified: ok}); err != nil {
		return fmt.Errorf("webauthn: set user verified %v: %w", ok, err)
	}
	return nil
}

// Credentials lists the credentials the authenticator holds.
func (a *Authenticator) Credentials() ([]*webauthn.Credential, error) {
	res, err := chromedp.Call(a.ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: a.ID})
	if err != nil {
		return nil, fmt.Errorf("webauthn: credentials: %w", err)
	}
	return res.Credentials, nil
}

// Remove takes the authenticator away (a tablet that is wiped or lost).
func (a *Authenticator) Remove() error {
	if _, err := chromedp.Call(a.ctx, webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: a.ID}); err != nil {
		return fmt.Errorf("webauthn: remove authenticator: %w", err)
	}
	return nil
}
