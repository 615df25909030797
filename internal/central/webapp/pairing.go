package webapp

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zmonitor/firmware/internal/central/server"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// The technician's path: the scan page reads the QR code in the page and
// posts its text to /preview (the typed-code page posts the device ID,
// address and code there); the preview page shows the device and posts
// the same fields to /pairings; that starts the pairing and sends the
// tablet to /pairings/{id}, whose module follows /pairings/{id}/events
// (server-sent events) and shows each step, then the outcome.

// pairingFields are the fields of the preview and provision forms: a QR
// code's text, or a device ID, address and pairing code.
var pairingFields = []string{"qr", "deviceId", "address", "pairingCode"}

type codeForm struct {
	DeviceID, Address string
}

type previewView struct {
	server.DevicePreview
}

// nextStep is a button on a problem: where to go next.
type nextStep struct {
	Href, Text, Class string
}

type stepView struct {
	State, Text, Class string
}

type pairingRow struct {
	tabletwire.PairingView
	Outcome string
}

// deviceSteps are the device's states the technician sees, in order, in
// plain words.
var deviceSteps = []stepView{
	{State: state.PairingReceived.String(), Text: "The monitor received the configuration"},
	{State: state.ApplyingConfig.String(), Text: "The monitor applies the configuration"},
	{State: state.TestingConnection.String(), Text: "The monitor tests its server connection"},
	{State: state.Provisioned.String(), Text: "Provisioned"},
}

func (a *App) scanPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "scan", page{Title: "Scan", Scripts: []string{"scan.js"}})
}

func (a *App) codePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := codeForm{DeviceID: q.Get("device"), Address: q.Get("address")}
	if len(f.DeviceID) > 64 || len(f.Address) > 260 || !cleanText(f.DeviceID) || !cleanText(f.Address) {
		f = codeForm{}
	}
	a.render(w, r, http.StatusOK, "code", page{Title: "Type the code", Form: f})
}

// pairingRequest reads the preview and provision forms.
func (a *App) pairingRequest(w http.ResponseWriter, r *http.Request) (tabletwire.PairingRequest, map[string]string, bool) {
	f, err := decodeForm(w, r, pairingFields...)
	if err != nil {
		a.formRefused(w, r, err)
		return tabletwire.PairingRequest{}, nil, false
	}
	req := tabletwire.PairingRequest{QR: f["qr"], DeviceID: strings.TrimSpace(f["deviceId"]), Address: strings.TrimSpace(f["address"]), PairingCode: f["pairingCode"]}
	hidden := map[string]string{}
	for k, v := range map[string]string{"qr": req.QR, "deviceId": req.DeviceID, "address": req.Address, "pairingCode": req.PairingCode} {
		if v != "" {
			hidden[k] = v
		}
	}
	return req, hidden, true
}

// preview shows the device a scanned QR code (or a typed code) names,
// with one button to provision it; or the refusal the provisioning would
// get, with what to do.
func (a *App) preview(w http.ResponseWriter, r *http.Request) {
	req, hidden, ok := a.pairingRequest(w, r)
	if !ok {
		return
	}
	p, err := a.api.Preview(r.Context(), req)
	if err != nil {
		a.problem(w, r, err, req)
		return
	}
	pg := page{Title: "Provision " + p.DeviceID, Preview: previewView{p}, Hidden: hidden, Scripts: []string{"countdown.js"}}
	if !p.ExpiresAt.IsZero() {
		pg.ExpiresISO = p.ExpiresAt.UTC().Format(time.RFC3339)
		pg.TimeLeft = timeLeft(p.ExpiresAt, a.cfg.Clock.Now())
	}
	a.render(w, r, http.StatusOK, "preview", pg)
}

// timeLeft says how long a QR code stays valid, by the Central Station's
// clock (the device's may differ).
func timeLeft(exp, now time.Time) string {
	d := exp.Sub(now).Round(time.Second)
	if d <= 0 {
		return fmt.Sprintf("expired at %s UTC: press the button on the monitor again", exp.UTC().Format("15:04:05"))
	}
	return fmt.Sprintf("%d:%02d (until %s UTC)", int(d.Minutes()), int(d.Seconds())%60, exp.UTC().Format("15:04:05"))
}

// provision starts the pairing and sends the tablet to its progress page.
// A refusal that was recorded is shown there too.
func (a *App) provision(w http.ResponseWriter, r *http.Request) {
	req, _, ok := a.pairingRequest(w, r)
	if !ok {
		return
	}
	acc, err := a.api.Pair(r.Context(), userOf(r).Technician, req)
	if err != nil && acc.PairingID == "" {
		a.problem(w, r, err, req)
		return
	}
	http.Redirect(w, r, "/pairings/"+acc.PairingID, http.StatusSeeOther)
}

// problem shows a refusal with its title, what to do, and the next steps.
func (a *App) problem(w http.ResponseWriter, r *http.Request, err error, req tabletwire.PairingRequest) {
	body, status := a.api.Problem(err)
	a.render(w, r, status, "problem", page{Title: body.Title, Problem: body, NextSteps: nextSteps(body.Code, req)})
}

// nextSteps are the buttons after a failure or refusal: scanning again
// first, or typing the code first when that is what went wrong (and the
// typed-code form keeps the device ID and address it had).
func nextSteps(code string, req tabletwire.PairingRequest) []nextStep {
	typeIt := "/code"
	if req.DeviceID != "" {
		typeIt += "?device=" + url.QueryEscape(req.DeviceID) + "&address=" + url.QueryEscape(req.Address)
	}
	scan := nextStep{Href: "/scan", Text: "Scan again"}
	typed := nextStep{Href: typeIt, Text: "Type the code"}
	switch code {
	case "PAIRING_CODE_INVALID", "ADDRESS_INVALID", "DEVICE_UNKNOWN":
		if req.QR == "" {
			typed.Class, scan.Class = "primary", "secondary"
			return []nextStep{typed, scan}
		}
	}
	scan.Class, typed.Class = "primary", "secondary"
	return []nextStep{scan, typed}
}

// pairingPage shows one pairing: its steps as far as they went, and the
// outcome once there is one. Its module follows the events until then.
func (a *App) pairingPage(w http.ResponseWriter, r *http.Request) {
	p, err := a.api.PairingFor(r.Context(), userOf(r).Technician, r.PathValue("id"))
	if err != nil {
		body, status := a.api.Problem(err)
		if status == http.StatusNotFound {
			a.errorPage(w, r, status, "No such pairing", "Open it from My pairings.")
			return
		}
		a.render(w, r, status, "problem", page{Title: body.Title, Problem: body})
		return
	}
	v := server.View(p)
	pg := page{Title: "Provisioning " + v.DeviceID, Pairing: v, Scripts: []string{"progress.js"}}
	pg.Steps, pg.StatusText = steps(v)
	switch v.State {
	case tabletwire.StateSucceeded:
		pg.Success = true
	case tabletwire.StateFailed, tabletwire.StateRefused:
		pg.Failure = v.Result
		if pg.Failure == nil {
			pg.Failure = &tabletwire.ErrorBody{Title: "Not provisioned", Action: "Scan again"}
		}
		req := tabletwire.PairingRequest{}
		if p.Method == store.MethodManual {
			req.DeviceID = p.DeviceID
		} else {
			req.QR = "scanned"
		}
		pg.NextSteps = nextSteps(pg.Failure.Code, req)
	}
	a.render(w, r, http.StatusOK, "pairing", pg)
}

// steps marks the device steps done, current or to come, and says where
// the pairing is in words.
func steps(v tabletwire.PairingView) ([]stepView, string) {
	out := make([]stepView, len(deviceSteps))
	copy(out, deviceSteps)
	cur := -1
	for i, s := range out {
		if s.State == v.DeviceState {
			cur = i
		}
	}
	if v.State == tabletwire.StateSucceeded {
		cur = len(out) - 1
	}
	for i := range out {
		switch {
		case i < cur, i == cur && v.Final:
			out[i].Class = "done"
		case i == cur:
			out[i].Class = "current"
		default:
			out[i].Class = "todo"
		}
	}
	if v.Final && v.State != tabletwire.StateSucceeded && cur >= 0 {
		out[cur].Class = "failed"
	}
	return out, statusText(v)
}

// statusText is the pairing's state in words.
func statusText(v tabletwire.PairingView) string {
	switch v.State {
	case tabletwire.StateQueued:
		return "Waiting for its turn…"
	case tabletwire.StateSucceeded:
		return "PROVISIONED"
	case tabletwire.StateFailed:
		return "Not provisioned"
	case tabletwire.StateRefused:
		return "Refused by the Central Station"
	}
	for _, s := range deviceSteps {
		if s.State == v.DeviceState {
			return s.Text + "…"
		}
	}
	return "Contacting the monitor…"
}

// pairingEvents streams the pairing's progress (server-sent events).
func (a *App) pairingEvents(w http.ResponseWriter, r *http.Request) {
	a.api.ServeEvents(w, r, userOf(r).Technician, r.PathValue("id"))
}

// myPairings lists the technician's pairings of the day (UTC).
func (a *App) myPairings(w http.ResponseWriter, r *http.Request) {
	now := a.cfg.Clock.Now().UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	ps, err := a.st.TechnicianPairings(r.Context(), userOf(r).ID, day, 200)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	rows := make([]pairingRow, 0, len(ps))
	for _, p := range ps {
		v := server.View(p)
		row := pairingRow{PairingView: v, Outcome: statusText(v)}
		if v.Result != nil {
			row.Outcome += ": " + v.Result.Title
		}
		rows = append(rows, row)
	}
	a.render(w, r, http.StatusOK, "pairings", page{Title: "My pairings", Pairings: rows})
}
