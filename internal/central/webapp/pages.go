package webapp

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// templateFS holds the pages: layout.html and one file per page, each
// defining "content".
//
//go:embed templates/*.html
var templateFS embed.FS

// pageSet maps a page name ("scan") to its template: the layout with the
// page's content.
type pageSet map[string]*template.Template

// parseTemplates parses every page on the layout.
func parseTemplates() (pageSet, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	set := pageSet{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(template.FuncMap{"since": since, "soon": soon}).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", n, err)
		}
		set[name] = t
	}
	return set, nil
}

// page is what every page's template gets.
type page struct {
	Title   string
	User    *userView
	Scripts []string // modules under /static/js
	// The page's own data.
	Next       string
	Form       codeForm
	Preview    previewView
	ExpiresISO string
	TimeLeft   string
	Hidden     map[string]string
	Problem    tabletwire.ErrorBody
	NextSteps  []nextStep
	Pairing    tabletwire.PairingView
	Steps      []stepView
	StatusText string
	Success    bool
	Failure    *tabletwire.ErrorBody
	Pairings   []pairingRow
	// Op is an operator's page's own data (operator.go, inventory.go).
	Op any
}

type userView struct {
	Name     string
	Role     string
	Operator bool // the operator's pages are in the menu
}

// render executes page name with p and writes it with status.
func (a *App) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	t := a.pages[name]
	if t == nil {
		a.log.Error("no such page template", "page", name)
		http.Error(w, "page missing", http.StatusInternalServerError)
		return
	}
	if u := userOf(r); u.ID != "" && p.User == nil {
		p.User = &userView{Name: u.Name, Role: u.Role.String(), Operator: u.Role == store.RoleOperator}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		a.log.Error("render page", "page", name, "err", err)
		http.Error(w, "page could not be shown", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes()) //nolint:errcheck // the client went away
}

// errorPage answers a short error page (also for refusals before any
// session: CSRF, Host, 404).
func (a *App) errorPage(w http.ResponseWriter, r *http.Request, status int, title, action string) {
	if wantsJSON(r) {
		writeJSON(w, status, map[string]string{"error": title + ": " + action})
		return
	}
	a.render(w, r, status, "error", page{Title: title, Problem: tabletwire.ErrorBody{Title: title, Action: action}})
}

func wantsJSON(r *http.Request) bool {
	return r.Header.Get("Content-Type") == "application/json" || r.Header.Get("Accept") == "application/json"
}

// internalError logs err and answers a page without its text.
func (a *App) internalError(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Error("internal error", "path", r.URL.Path, "err", err)
	a.errorPage(w, r, http.StatusInternalServerError, "Central Station error", "Try again. If it happens again, contact IT support.")
}

// formRefused answers a form the strict decoder refused.
func (a *App) formRefused(w http.ResponseWriter, r *http.Request, err error) {
	var fe *formError
	if !errors.As(err, &fe) {
		a.internalError(w, r, err)
		return
	}
	a.errorPage(w, r, fe.status, "Form not accepted", fe.msg+".")
}

func (a *App) notFound(w http.ResponseWriter, r *http.Request) {
	a.errorPage(w, r, http.StatusNotFound, "Page not found", "Go back to the start.")
}

func (a *App) signInPage(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	a.render(w, r, http.StatusOK, "sign-in", page{Title: "Sign in", Scripts: []string{"signin.js"}, Next: next})
}

func (a *App) enrollPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "enroll", page{Title: "Register this tablet", Scripts: []string{"enroll.js"}})
}

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/scan", http.StatusSeeOther)
}
