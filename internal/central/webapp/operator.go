package webapp

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/zmonitor/firmware/internal/central/store"
)

// The operator's pages (role operator; a technician gets 403): the
// technicians and their passkeys (this file) and the inventory
// (inventory.go). Actions are POSTed forms (strict, CSRF-checked like
// every other), each audited with the operator as the actor, then a 303
// back to the page.

// maxName bounds a technician's name (the store's limit).
const maxName = 128

type technicianRow struct {
	store.Technician
	Passkeys []store.Passkey // not revoked
	Self     bool            // the operator looking at the page
}

type techniciansView struct {
	Rows []technicianRow
	// Link is an enrollment link just made, shown once.
	Link *linkView
}

type linkView struct {
	Name      string
	URL       string
	ExpiresAt string
	QR        template.HTML
}

func (a *App) techniciansPage(w http.ResponseWriter, r *http.Request) {
	a.renderTechnicians(w, r, http.StatusOK, nil)
}

func (a *App) renderTechnicians(w http.ResponseWriter, r *http.Request, status int, link *linkView) {
	ctx := r.Context()
	ts, err := a.st.Technicians(ctx)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	keys, err := a.st.Passkeys(ctx, "")
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	byTech := map[string][]store.Passkey{}
	for _, k := range keys {
		if !k.Revoked() {
			byTech[k.TechnicianID] = append(byTech[k.TechnicianID], k)
		}
	}
	me := userOf(r).ID
	v := techniciansView{Link: link}
	for _, t := range ts {
		v.Rows = append(v.Rows, technicianRow{Technician: t, Passkeys: byTech[t.ID], Self: t.ID == me})
	}
	sort.SliceStable(v.Rows, func(i, j int) bool { return v.Rows[i].Revoked() != v.Rows[j].Revoked() && !v.Rows[i].Revoked() })
	a.render(w, r, status, "technicians", page{Title: "Technicians", Op: v})
}

// addTechnician creates a technician (or operator) and shows a one-time
// enrollment link for their tablet, with its QR code. No bearer token:
// the CLI makes those (zm-central technicians add).
func (a *App) addTechnician(w http.ResponseWriter, r *http.Request) {
	f, err := decodeForm(w, r, "name", "role")
	if err != nil {
		a.formRefused(w, r, err)
		return
	}
	name := strings.TrimSpace(f["name"])
	if name == "" || len(name) > maxName {
		a.errorPage(w, r, http.StatusBadRequest, "Form not accepted", fmt.Sprintf("Give the technician's name (1 to %d bytes).", maxName))
		return
	}
	role, err := store.ParseRole(f["role"])
	if err != nil {
		a.errorPage(w, r, http.StatusBadRequest, "Form not accepted", "The role must be technician or operator.")
		return
	}
	ctx := r.Context()
	op := userOf(r).ID
	tok, err := store.NewTechnicianToken(a.cfg.Rand)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	if _, err := a.st.AddTechnician(ctx, tok.ID, name, tok.Hash); err != nil {
		a.internalError(w, r, err)
		return
	}
	a.audit(ctx, op, "technician.add", tok.ID+" "+name)
	if role != store.RoleTechnician {
		if err := a.st.SetTechnicianRole(ctx, tok.ID, role); err != nil {
			a.internalError(w, r, err)
			return
		}
		a.audit(ctx, op, "technician.role", tok.ID+" "+role.String())
	}
	a.showNewLink(w, r, tok.ID)
}

// newEnrollmentLink makes another link for a technician (another tablet,
// a lost link).
func (a *App) newEnrollmentLink(w http.ResponseWriter, r *http.Request) {
	if _, err := decodeForm(w, r); err != nil {
		a.formRefused(w, r, err)
		return
	}
	t, ok := a.technicianOr404(w, r)
	if !ok {
		return
	}
	if t.Revoked() {
		a.errorPage(w, r, http.StatusConflict, "Technician revoked", "A revoked technician cannot register a tablet. Add them again.")
		return
	}
	a.showNewLink(w, r, t.ID)
}

func (a *App) showNewLink(w http.ResponseWriter, r *http.Request, techID string) {
	ctx := r.Context()
	t, err := a.st.Technician(ctx, techID)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	l, err := CreateEnrollmentLink(ctx, a.st, t.ID, userOf(r).ID, a.origin.String(), a.cfg.Clock.Now(), a.cfg.Rand)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	qr, err := qrSVG(l.URL, "Enrollment link for "+t.Name+" as a QR code")
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	a.renderTechnicians(w, r, http.StatusOK, &linkView{Name: t.Name, URL: l.URL, ExpiresAt: l.ExpiresAt.UTC().Format("15:04 UTC"), QR: qr})
}

// revokeTechnician revokes a technician: their bearer token, every
// passkey and every session, in one transaction. An operator cannot
// revoke themselves (another operator can).
// It asks for confirmation first (confirmed).
func (a *App) revokeTechnician(w http.ResponseWriter, r *http.Request) {
	self := func(t store.Technician) bool {
		if t.ID == userOf(r).ID {
			a.errorPage(w, r, http.StatusConflict, "Not revoked", "You cannot revoke yourself: another operator can.")
			return true
		}
		return false
	}
	if !a.confirmed(w, r, func() (confirmView, bool) {
		t, ok := a.technicianOr404(w, r)
		if !ok || self(t) {
			return confirmView{}, false
		}
		return confirmView{
			Question: "Revoke " + t.Name + "?",
			Effect:   t.Name + " (" + t.ID + ") is signed out on every tablet; their passkeys and bearer token stop working. This cannot be undone: add them again to let them work.",
			Button:   "Yes, revoke " + t.Name,
			Cancel:   "/operator/technicians",
		}, true
	}) {
		return
	}
	t, ok := a.technicianOr404(w, r)
	if !ok || self(t) {
		return
	}
	if err := a.st.RevokeTechnician(r.Context(), t.ID); err != nil {
		a.internalError(w, r, err)
		return
	}
	a.audit(r.Context(), userOf(r).ID, "technician.revoke", t.ID+": token, passkeys and sessions")
	http.Redirect(w, r, "/operator/technicians", http.StatusSeeOther)
}

// revokePasskey revokes one tablet's passkey: its session ends at its
// next request.
// It asks for confirmation first (confirmed).
func (a *App) revokePasskey(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	passkey := func() (store.Passkey, bool) {
		k, err := a.st.Passkey(ctx, r.PathValue("id"))
		if errors.Is(err, store.ErrNotFound) {
			a.errorPage(w, r, http.StatusNotFound, "No such passkey", "Go back to the technicians.")
			return k, false
		} else if err != nil {
			a.internalError(w, r, err)
			return k, false
		}
		return k, true
	}
	if !a.confirmed(w, r, func() (confirmView, bool) {
		k, ok := passkey()
		return confirmView{
			Question: "Revoke the passkey of tablet " + strconv.Quote(k.Name) + "?",
			Effect:   "That tablet is signed out at its next request and cannot sign in with this passkey again. The technician's other tablets keep working. To use the tablet again, give the technician a new enrollment link.",
			Button:   "Yes, revoke this passkey",
			Cancel:   "/operator/technicians",
		}, ok
	}) {
		return
	}
	k, ok := passkey()
	if !ok {
		return
	}
	if err := a.st.RevokePasskey(ctx, k.ID); err != nil {
		a.internalError(w, r, err)
		return
	}
	a.audit(ctx, userOf(r).ID, "passkey.revoked", fmt.Sprintf("passkey=%s technician=%s name=%q", k.ID, k.TechnicianID, k.Name))
	http.Redirect(w, r, "/operator/technicians", http.StatusSeeOther)
}

func (a *App) technicianOr404(w http.ResponseWriter, r *http.Request) (store.Technician, bool) {
	t, err := a.st.Technician(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		a.errorPage(w, r, http.StatusNotFound, "No such technician", "Go back to the technicians.")
		return t, false
	} else if err != nil {
		a.internalError(w, r, err)
		return t, false
	}
	return t, true
}

// qrSVG draws text's QR code as an SVG element (no style attribute, no
// script: the page's CSP allows it inline, where a data: image would not
// be).
func qrSVG(text, label string) (template.HTML, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return "", fmt.Errorf("QR code: %w", err)
	}
	bm := q.Bitmap()
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="qr" role="img" aria-label="%s" viewBox="0 0 %d %d" shape-rendering="crispEdges"><rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`,
		template.HTMLEscapeString(label), len(bm), len(bm), len(bm), len(bm))
	for y, row := range bm {
		for x, on := range row {
			if on {
				fmt.Fprintf(&b, "M%d %dh1v1h-1z", x, y)
			}
		}
	}
	b.WriteString(`"/></svg>`)
	return template.HTML(b.String()), nil //nolint:gosec // built here from numbers and an escaped label
}

// since formats a time for the operator's lists ("—" when zero).
func since(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
