package webapp

import (
	"net/http"
)

// Revoking cannot be undone, so it takes two steps: the Revoke button
// posts the action's form without "confirm", which changes nothing and
// answers a page saying what will happen, with **Yes, revoke** (the same
// action with confirm=yes) and **Cancel**. No script: the CSP allows none
// inline, and the step works the same without the page's modules.

// confirmField is the field that carries the operator's confirmation.
const confirmField = "confirm"

// confirmView is the confirmation page's content.
type confirmView struct {
	Question string // "Revoke device ZM-001?"
	Effect   string // what happens, in plain words
	Action   string // the form's action (the same path)
	Button   string // "Yes, revoke ZM-001"
	Cancel   string // where Cancel goes
}

// confirmed reads a revoke form: true when it carries confirm=yes; else it
// answers the confirmation page (nothing changed) and returns false. A
// form the strict decoder refuses is answered as such.
func (a *App) confirmed(w http.ResponseWriter, r *http.Request, v func() (confirmView, bool)) bool {
	f, err := decodeForm(w, r, confirmField)
	if err != nil {
		a.formRefused(w, r, err)
		return false
	}
	switch f[confirmField] {
	case "yes":
		return true
	case "":
	default:
		a.errorPage(w, r, http.StatusBadRequest, "Form not accepted", `The field "confirm" is "yes" or absent.`)
		return false
	}
	cv, ok := v()
	if !ok {
		return false
	}
	cv.Action = r.URL.Path
	a.render(w, r, http.StatusOK, "confirm", page{Title: cv.Question, Op: cv})
	return false
}
