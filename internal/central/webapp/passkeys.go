package webapp

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/strictjson"
)

// Passkey ceremonies, as JSON endpoints the pages' modules call
// (static/js/passkey.js):
//
//	POST /webauthn/register/begin   {"token"}                       → {"ceremony","publicKey","name"}
//	POST /webauthn/register/finish  {"ceremony","token","name","credential"} → {"next"}
//	POST /webauthn/sign-in/begin    {}                              → {"ceremony","publicKey"}
//	POST /webauthn/sign-in/finish   {"ceremony","credential"}       → {"next"}
//
// Registration needs a valid enrollment link's token; sign-in is
// discoverable (the tablet offers its passkey, no user name is typed).
// User verification (the tablet's PIN or biometrics) is required in both:
// the library refuses an assertion or attestation without the UV flag.
// Refusals answer {"error": "..."} with a 4xx; the reason of a failed
// sign-in goes to the log and the audit trail, not to the page.

// maxCeremonyBody bounds a ceremony request (an attestation with its
// certificate chain fits easily).
const maxCeremonyBody = 64 << 10

// Ceremony kinds.
const (
	ceremonyRegister = "register"
	ceremonySignIn   = "sign-in"
)

// webUser is a technician as WebAuthn sees them. The user handle is the
// technician's ID.
type webUser struct {
	t     store.Technician
	creds []webauthn.Credential
}

func (u webUser) WebAuthnID() []byte                         { return []byte(u.t.ID) }
func (u webUser) WebAuthnName() string                       { return u.t.Name }
func (u webUser) WebAuthnDisplayName() string                { return u.t.Name }
func (u webUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// loadUser returns technician id with their passkeys that are not revoked.
func (a *App) loadUser(ctx context.Context, id string) (webUser, []store.Passkey, error) {
	t, err := a.st.Technician(ctx, id)
	if err != nil {
		return webUser{}, nil, err
	}
	ks, err := a.st.Passkeys(ctx, id)
	if err != nil {
		return webUser{}, nil, err
	}
	u := webUser{t: t}
	var live []store.Passkey
	for _, k := range ks {
		if k.Revoked() {
			continue
		}
		var c webauthn.Credential
		if err := json.Unmarshal(k.Credential, &c); err != nil {
			return webUser{}, nil, fmt.Errorf("passkey %s: %w", k.ID, err)
		}
		u.creds = append(u.creds, c)
		live = append(live, k)
	}
	return u, live, nil
}

// ceremonyRefusal is a ceremony the app refuses, with what the page shows.
type ceremonyRefusal struct {
	status int
	show   string // for the technician
	why    error  // for the log and the audit
}

func (e *ceremonyRefusal) Error() string { return e.show + ": " + e.why.Error() }

func refuseCeremony(status int, show string, why error) *ceremonyRefusal {
	return &ceremonyRefusal{status: status, show: show, why: why}
}

// decodeJSON reads a ceremony request strictly (internal/proto/strictjson):
// JSON, at most maxCeremonyBody bytes, no unknown, repeated or
// case-folded member, no null, clean UTF-8, one value.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return refuseCeremony(http.StatusUnsupportedMediaType, "Send JSON", errors.New("content type "+ct))
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCeremonyBody))
	if err != nil {
		return refuseCeremony(http.StatusRequestEntityTooLarge, "Request too large", err)
	}
	if err := strictjson.Decode(b, v); err != nil {
		return refuseCeremony(http.StatusBadRequest, "Request not understood", err)
	}
	return nil
}

// writeCeremonyError answers a ceremony refusal (or an internal error).
func (a *App) writeCeremonyError(w http.ResponseWriter, err error) {
	var cr *ceremonyRefusal
	if !errors.As(err, &cr) {
		a.log.Error("passkey ceremony", "err", err)
		cr = refuseCeremony(http.StatusInternalServerError, "Central Station error: try again, then contact IT support", err)
	}
	writeJSON(w, cr.status, map[string]string{"error": cr.show})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client went away
}

// enrollmentLink checks an enrollment link's token: the link exists, the
// token's hash matches (in constant time), it is unused and unexpired, and
// its technician is not revoked.
func (a *App) enrollmentLink(ctx context.Context, token string) (store.EnrollmentLink, error) {
	invalid := refuseCeremony(http.StatusForbidden, "This enrollment link is not valid: ask the operator for a new one", nil)
	id, err := store.EnrollmentSecret.IDOf(token)
	if err != nil {
		invalid.why = errors.New("malformed token")
		return store.EnrollmentLink{}, invalid
	}
	l, err := a.st.EnrollmentLink(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		store.TokenMatches(dummyHash, token)
		invalid.why = errors.New("unknown link")
		return l, invalid
	case err != nil:
		return l, err
	case !store.TokenMatches(l.Hash, token):
		invalid.why = errors.New("wrong secret for link " + l.ID)
		return l, invalid
	case !l.UsedAt.IsZero():
		return l, refuseCeremony(http.StatusGone, "This enrollment link was used already: ask the operator for a new one", errors.New("link "+l.ID+" used"))
	case !a.cfg.Clock.Now().Before(l.ExpiresAt):
		return l, refuseCeremony(http.StatusGone, "This enrollment link expired (it is valid for 15 minutes): ask the operator for a new one", errors.New("link "+l.ID+" expired"))
	}
	return l, nil
}

// newCeremonyID draws a ceremony's ID.
func (a *App) newCeremonyID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(a.cfg.Rand, b[:]); err != nil {
		return "", err
	}
	return "c-" + hex.EncodeToString(b[:]), nil
}

func (a *App) saveCeremony(ctx context.Context, kind, subject string, sd *webauthn.SessionData) (string, error) {
	id, err := a.newCeremonyID()
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(sd)
	if err != nil {
		return "", err
	}
	return id, a.st.SaveCeremony(ctx, store.Ceremony{ID: id, Kind: kind, Subject: subject, Data: data, ExpiresAt: a.cfg.Clock.Now().Add(ceremonyLifetime)})
}

// takeCeremony returns the session data of ceremony id of kind, once.
func (a *App) takeCeremony(ctx context.Context, id, kind string) (store.Ceremony, webauthn.SessionData, error) {
	var sd webauthn.SessionData
	c, err := a.st.TakeCeremony(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrExpired):
		return c, sd, refuseCeremony(http.StatusBadRequest, "This passkey request is over: try again", err)
	case err != nil:
		return c, sd, err
	case c.Kind != kind:
		return c, sd, refuseCeremony(http.StatusBadRequest, "This passkey request is over: try again", errors.New("ceremony of another kind"))
	}
	if err := json.Unmarshal(c.Data, &sd); err != nil {
		return c, sd, fmt.Errorf("ceremony %s: %w", id, err)
	}
	return c, sd, nil
}

type registerBegin struct {
	Token string `json:"token"`
}

// registerBegin starts registering a passkey for an enrollment link's
// technician.
func (a *App) registerBegin(w http.ResponseWriter, r *http.Request) {
	var req registerBegin
	if err := decodeJSON(w, r, &req); err != nil {
		a.writeCeremonyError(w, err)
		return
	}
	ctx := r.Context()
	l, err := a.enrollmentLink(ctx, req.Token)
	if err != nil {
		a.enrollmentFailed(ctx, l, err)
		a.writeCeremonyError(w, err)
		return
	}
	u, _, err := a.loadUser(ctx, l.TechnicianID)
	if err != nil {
		a.writeCeremonyError(w, err)
		return
	}
	if u.t.Revoked() {
		err := refuseCeremony(http.StatusForbidden, "This technician was revoked: ask the operator", errors.New("technician revoked"))
		a.enrollmentFailed(ctx, l, err)
		a.writeCeremonyError(w, err)
		return
	}
	creation, sd, err := a.wa.BeginRegistration(u,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementRequired,
			UserVerification: protocol.VerificationRequired,
		}),
		webauthn.WithExclusions(webauthn.Credentials(u.creds).CredentialDescriptors()),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation),
	)
	if err != nil {
		a.writeCeremonyError(w, fmt.Errorf("begin registration: %w", err))
		return
	}
	id, err := a.saveCeremony(ctx, ceremonyRegister, l.ID, sd)
	if err != nil {
		a.writeCeremonyError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ceremony": id, "publicKey": creation.Response, "name": u.t.Name})
}

type registerFinish struct {
	Ceremony   string          `json:"ceremony"`
	Token      string          `json:"token"`
	Name       string          `json:"name"`
	Credential json.RawMessage `json:"credential"`
}

// registerFinish checks the tablet's new passkey, records it (the link is
// used), and signs the technician in on this tablet.
func (a *App) registerFinish(w http.ResponseWriter, r *http.Request) {
	var req registerFinish
	if err := decodeJSON(w, r, &req); err != nil {
		a.writeCeremonyError(w, err)
		return
	}
	ctx := r.Context()
	c, sd, err := a.takeCeremony(ctx, req.Ceremony, ceremonyRegister)
	if err != nil {
		a.writeCeremonyError(w, err)
		return
	}
	l, err := a.enrollmentLink(ctx, req.Token)
	if err == nil && l.ID != c.Subject {
		err = refuseCeremony(http.StatusForbidden, "This enrollment link is not valid: ask the operator for a new one", errors.New("ceremony of another link"))
	}
	if err != nil {
		a.enrollmentFailed(ctx, l, err)
		a.writeCeremonyError(w, err)
		return
	}
	name := strings.TrimSpace(req.Name)
	if name == "" {
		name = "tablet"
	}
	if len(name) > 64 || !cleanText(name) {
		a.writeCeremonyError(w, refuseCeremony(http.StatusBadRequest, "Name this tablet with at most 64 characters", errors.New("bad tablet name")))
		return
	}
	u, _, err := a.loadUser(ctx, l.TechnicianID)
	if err != nil {
		a.writeCeremonyError(w, err)
		return
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(req.Credential)
	if err != nil {
		err = refuseCeremony(http.StatusBadRequest, "The tablet's passkey could not be read: try again", err)
		a.enrollmentFailed(ctx, l, err)
		a.writeCeremonyError(w, err)
		return
	}
	cred, err := a.wa.CreateCredential(u, sd, parsed)
	if err != nil {
		err = refuseCeremony(http.StatusForbidden, "The passkey was not accepted (the tablet must verify you with its PIN or biometrics): try again", err)
		a.enrollmentFailed(ctx, l, err)
		a.writeCeremonyError(w, err)
		return
	}
	record, err := json.Marshal(cred)
	if err != nil {
		a.writeCeremonyError(w, err)
		return
	}
	kid, err := a.newPasskeyID()
	if err != nil {
		a.writeCeremonyError(w, err)
		return
	}
	k := store.Passkey{ID: kid, TechnicianID: u.t.ID, CredentialID: cred.ID, Credential: record, Name: name}
	if err := a.st.RedeemEnrollmentLink(ctx, l.ID, k); err != nil {
		switch {
		case errors.Is(err, store.ErrAlreadyUsed):
			err = refuseCeremony(http.StatusGone, "This enrollment link was used already: ask the operator for a new one", err)
		case errors.Is(err, store.ErrExpired):
			err = refuseCeremony(http.StatusGone, "This enrollment link expired: ask the operator for a new one", err)
		case errors.Is(err, store.ErrRevoked):
			err = refuseCeremony(http.StatusForbidden, "This technician was revoked: ask the operator", err)
		case errors.Is(err, store.ErrConflict):
			err = refuseCeremony(http.StatusConflict, "This passkey is registered already: sign in with it", err)
		}
		a.enrollmentFailed(ctx, l, err)
		a.writeCeremonyError(w, err)
		return
	}
	a.audit(ctx, u.t.ID, "passkey.enrolled", fmt.Sprintf("passkey=%s link=%s name=%q", k.ID, l.ID, name))
	if err := a.startSession(w, r, u.t, k); err != nil {
		a.writeCeremonyError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"next": "/scan"})
}

// newPasskeyID draws a passkey's ID: "k-" and 16 hex digits.
func (a *App) newPasskeyID() (string, error) {
	var b [8]byte
	if _, err := io.ReadFull(a.cfg.Rand, b[:]); err != nil {
		return "", err
	}
	return "k-" + hex.EncodeToString(b[:]), nil
}

// enrollmentFailed records a refused enrollment in the audit trail.
func (a *App) enrollmentFailed(ctx context.Context, l store.EnrollmentLink, err error) {
	var cr *ceremonyRefusal
	if !errors.As(err, &cr) {
		return
	}
	actor := l.TechnicianID
	if actor == "" {
		actor = "web"
	}
	a.log.Warn("passkey enrollment refused", "link", l.ID, "why", cr.why)
	a.audit(ctx, actor, "passkey.enroll_failed", fmt.Sprintf("link=%s: %v", l.ID, cr.why))
}

// signInBegin starts a discoverable sign-in: the tablet offers the passkey
// it holds for this site.
func (a *App) signInBegin(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := decodeJSON(w, r, &req); err != nil {
		a.writeCeremonyError(w, err)
		return
	}
	assertion, sd, err := a.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		a.writeCeremonyError(w, fmt.Errorf("begin sign-in: %w", err))
		return
	}
	id, err := a.saveCeremony(r.Context(), ceremonySignIn, "", sd)
	if err != nil {
		a.writeCeremonyError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ceremony": id, "publicKey": assertion.Response})
}

type signInFinish struct {
	Ceremony   string          `json:"ceremony"`
	Next       string          `json:"next"`
	Credential json.RawMessage `json:"credential"`
}

// signInFinish checks the assertion and starts a session.
func (a *App) signInFinish(w http.ResponseWriter, r *http.Request) {
	var req signInFinish
	if err := decodeJSON(w, r, &req); err != nil {
		a.writeCeremonyError(w, err)
		return
	}
	ctx := r.Context()
	_, sd, err := a.takeCeremony(ctx, req.Ceremony, ceremonySignIn)
	if err != nil {
		a.writeCeremonyError(w, err)
		return
	}
	failed := func(actor string, why error) {
		a.log.Warn("sign-in refused", "technician", actor, "why", why)
		a.audit(ctx, actor, "web.sign_in_failed", why.Error())
		a.writeCeremonyError(w, refuseCeremony(http.StatusForbidden, "Sign-in refused: this tablet's passkey is not (or no longer) allowed, or the tablet did not verify you. Ask the operator for an enrollment link", why))
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(req.Credential)
	if err != nil {
		failed("web", fmt.Errorf("unreadable assertion: %w", err))
		return
	}
	var live []store.Passkey
	var tech store.Technician
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		u, ks, err := a.loadUser(ctx, string(userHandle))
		if err != nil {
			return nil, err
		}
		if u.t.Revoked() {
			return nil, errors.New("technician revoked")
		}
		live, tech = ks, u.t
		return u, nil
	}
	_, cred, err := a.wa.ValidatePasskeyLogin(handler, sd, parsed)
	if err != nil {
		actor := tech.ID
		if actor == "" {
			actor = "web"
		}
		failed(actor, fmt.Errorf("passkey not accepted: %w", err))
		return
	}
	if cred.Authenticator.CloneWarning {
		failed(tech.ID, errors.New("the passkey's signature counter went back: it may have been cloned"))
		return
	}
	var k store.Passkey
	for _, p := range live {
		if bytes.Equal(p.CredentialID, cred.ID) {
			k = p
		}
	}
	if k.ID == "" {
		failed(tech.ID, errors.New("credential is not one of the technician's passkeys"))
		return
	}
	record, err := json.Marshal(cred)
	if err != nil {
		a.writeCeremonyError(w, err)
		return
	}
	if err := a.st.UsePasskey(ctx, k.ID, record); err != nil {
		if errors.Is(err, store.ErrRevoked) {
			failed(tech.ID, err)
			return
		}
		a.writeCeremonyError(w, err)
		return
	}
	if err := a.startSession(w, r, tech, k); err != nil {
		a.writeCeremonyError(w, err)
		return
	}
	next := localPath(req.Next)
	if next == "" || strings.HasPrefix(next, "/sign-in") || strings.HasPrefix(next, "/enroll") {
		next = "/scan"
	}
	writeJSON(w, http.StatusOK, map[string]string{"next": next})
}
