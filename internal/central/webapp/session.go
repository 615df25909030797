package webapp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zmonitor/firmware/internal/central/store"
)

// SessionCookie is the session cookie's name. The __Host- prefix makes the
// browser refuse it unless it is Secure, for this host only (no Domain)
// and for the whole site (Path=/).
const SessionCookie = "__Host-zm-session"

// touchEvery: a session's last activity is written at most this often
// (its idle timeout is that much coarser; a request is not a write).
const touchEvery = time.Minute

// user is who made a request: the technician and the session.
type user struct {
	store.Technician
	session store.WebSession
}

// ctxKey keys the user in a request's context.
type ctxKey struct{}

func userOf(r *http.Request) user {
	u, _ := r.Context().Value(ctxKey{}).(user)
	return u
}

// errNoSession: the request has no valid session (none, unknown, wrong,
// ended, expired, revoked). The reason is logged, never shown.
var errNoSession = errors.New("no valid session")

// session returns the request's signed-in user, or errNoSession (with the
// reason wrapped) or a store error.
func (a *App) session(r *http.Request) (user, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return user{}, fmt.Errorf("%w: no cookie", errNoSession)
	}
	id, err := store.SessionSecret.IDOf(c.Value)
	if err != nil {
		return user{}, fmt.Errorf("%w: malformed cookie", errNoSession)
	}
	ctx := r.Context()
	ws, err := a.st.WebSession(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		store.TokenMatches(dummyHash, c.Value)
		return user{}, fmt.Errorf("%w: unknown session", errNoSession)
	case err != nil:
		return user{}, err
	case !store.TokenMatches(ws.Hash, c.Value):
		return user{}, fmt.Errorf("%w: wrong secret", errNoSession)
	case ws.Ended():
		return user{}, fmt.Errorf("%w: session ended", errNoSession)
	}
	now := a.cfg.Clock.Now()
	if now.Sub(ws.CreatedAt) >= a.cfg.AbsoluteTimeout || now.Sub(ws.LastSeenAt) >= a.cfg.IdleTimeout {
		if err := a.st.EndWebSession(ctx, ws.ID); err != nil {
			return user{}, err
		}
		a.audit(ctx, ws.TechnicianID, "web.session_expired", "session="+ws.ID)
		return user{}, fmt.Errorf("%w: session expired", errNoSession)
	}
	t, err := a.st.Technician(ctx, ws.TechnicianID)
	if err != nil {
		return user{}, err
	}
	if t.Revoked() {
		return user{}, fmt.Errorf("%w: technician revoked", errNoSession)
	}
	k, err := a.st.Passkey(ctx, ws.PasskeyID)
	if err != nil {
		return user{}, err
	}
	if k.Revoked() {
		return user{}, fmt.Errorf("%w: passkey revoked", errNoSession)
	}
	if now.Sub(ws.LastSeenAt) >= touchEvery {
		if err := a.st.TouchWebSession(ctx, ws.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return user{}, err
		}
	}
	return user{Technician: t, session: ws}, nil
}

// dummyHash is compared against when a session does not exist, so that the
// answer takes the same time.
var dummyHash = store.HashTechnicianToken("no such session")

// allows reports whether role r may use something that needs role need:
// an operator may do everything.
func allows(r, need store.Role) bool { return r == need || r == store.RoleOperator }

// signedIn wraps a browser handler that needs a session with role need.
// Without a session a page (GET) redirects to the sign-in page, which
// comes back here after; anything else is 401. A technician asking for an
// operator's page gets 403.
func (a *App) signedIn(need store.Role, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := a.session(r)
		if err != nil {
			if !errors.Is(err, errNoSession) {
				a.internalError(w, r, err)
				return
			}
			a.log.Info("not signed in", "path", r.URL.Path, "why", err)
			clearSessionCookie(w)
			if r.Method == http.MethodGet && !wantsEvents(r) {
				http.Redirect(w, r, "/sign-in?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			a.errorPage(w, r, http.StatusUnauthorized, "Signed out", "Your session ended. Sign in again with your passkey.")
			return
		}
		if !allows(u.Role, need) {
			a.errorPage(w, r, http.StatusForbidden, "Not allowed", "This page is for operators.")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, u)))
	}
}

func wantsEvents(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// startSession signs t in on this browser with passkey k.
func (a *App) startSession(w http.ResponseWriter, r *http.Request, t store.Technician, k store.Passkey) error {
	sec, err := store.SessionSecret.New(a.cfg.Rand)
	if err != nil {
		return err
	}
	if err := a.st.CreateWebSession(r.Context(), store.WebSession{ID: sec.ID, Hash: sec.Hash, TechnicianID: t.ID, PasskeyID: k.ID}); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: sec.Token, Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		// A session cookie (no Max-Age): the server ends the session.
	})
	a.audit(r.Context(), t.ID, "web.sign_in", fmt.Sprintf("session=%s passkey=%s role=%s", sec.ID, k.ID, t.Role))
	return nil
}

func clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// signOut ends the session (POST /sign-out).
func (a *App) signOut(w http.ResponseWriter, r *http.Request) {
	if _, err := decodeForm(w, r); err != nil {
		a.formRefused(w, r, err)
		return
	}
	u := userOf(r)
	if err := a.st.EndWebSession(r.Context(), u.session.ID); err != nil {
		a.internalError(w, r, err)
		return
	}
	a.audit(r.Context(), u.ID, "web.sign_out", "session="+u.session.ID)
	clearSessionCookie(w)
	http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
}

// localPath returns next if it is a path of this site ("/scan"), else "".
func localPath(next string) string {
	if len(next) > 512 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\x00\r\n") {
		return ""
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return ""
	}
	return next
}

// audit appends an audit record; a failure is logged (the operation it
// describes has happened).
func (a *App) audit(ctx context.Context, actor, event, detail string) {
	if err := a.st.Audit(ctx, store.AuditRecord{Actor: actor, Event: event, Detail: detail}); err != nil {
		a.log.Error("audit", "event", event, "err", err)
	}
}
