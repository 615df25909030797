package webapp

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zmonitor/firmware/internal/central/store"
)

// The operator's records: every pairing, filtered, each with its timeline
// (the audit records that name it), and the audit trail, filtered and
// exported as JSON Lines or CSV. Filters are GET query parameters,
// decoded as strictly as forms.

// auditShown bounds the audit records a page shows (exports have no
// bound).
const auditShown = 500

// filterTime is how the filters' times are typed (UTC, the
// datetime-local field's format; a date alone means its midnight).
const filterTime = "2006-01-02T15:04"

type pairingsView struct {
	Filter      map[string]string
	States      []string
	Technicians []store.Technician
	Rows        []operatorPairingRow
	Limited     bool
}

type operatorPairingRow struct {
	store.Pairing
	Technician string
}

type timelineView struct {
	Pairing    store.Pairing
	Technician string
	Steps      []timelineStep
	Events     []store.AuditRecord
}

type auditView struct {
	Filter map[string]string
	// ExportJSONL and ExportCSV are the exports' URLs with the filter.
	ExportJSONL, ExportCSV string
	Records                []store.AuditRecord
	Limited                bool
}

// decodeQuery reads a GET request's query as strictly as a form: known
// fields only, each once, clean text.
func decodeQuery(r *http.Request, fields ...string) (map[string]string, error) {
	if len(r.URL.RawQuery) > maxForm {
		return nil, &formError{status: http.StatusRequestURITooLong, msg: "the filter is too long"}
	}
	return parseForm(r.URL.RawQuery, "", fields...)
}

// parseFilterTime reads a filter's time ("" is none).
func parseFilterTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{filterTime, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, badForm("%s: %.40q is not a time (want YYYY-MM-DDTHH:MM, UTC)", name, v)
}

func (a *App) techniciansByID(r *http.Request) ([]store.Technician, map[string]string, error) {
	ts, err := a.st.Technicians(r.Context())
	if err != nil {
		return nil, nil, err
	}
	names := map[string]string{}
	for _, t := range ts {
		names[t.ID] = t.Name
	}
	return ts, names, nil
}

// pairingsPage lists pairings: state, device, technician, from, until.
func (a *App) pairingsPage(w http.ResponseWriter, r *http.Request) {
	q, err := decodeQuery(r, "state", "device", "technician", "from", "until")
	if err != nil {
		a.formRefused(w, r, err)
		return
	}
	f := store.PairingFilter{DeviceID: strings.TrimSpace(q["device"]), TechnicianID: q["technician"], Limit: store.MaxListed}
	if q["state"] != "" {
		if f.State, err = store.ParsePairingState(q["state"]); err != nil {
			a.formRefused(w, r, badForm("state: %.40q is not a pairing state", q["state"]))
			return
		}
	}
	if f.Since, err = parseFilterTime("from", q["from"]); err == nil {
		f.Until, err = parseFilterTime("until", q["until"])
	}
	if err != nil {
		a.formRefused(w, r, err)
		return
	}
	ps, err := a.st.Pairings(r.Context(), f)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	ts, names, err := a.techniciansByID(r)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	v := pairingsView{Filter: q, Technicians: ts, Limited: len(ps) == store.MaxListed}
	for s := store.PairingQueued; s <= store.PairingRefused; s++ {
		v.States = append(v.States, s.String())
	}
	for _, p := range ps {
		v.Rows = append(v.Rows, operatorPairingRow{Pairing: p, Technician: names[p.TechnicianID]})
	}
	a.render(w, r, http.StatusOK, "operator-pairings", page{Title: "Pairings", Op: v})
}

// pairingTimeline shows a pairing and every audit record that names it,
// in order.
func (a *App) pairingTimeline(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, err := a.st.Pairing(ctx, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		a.errorPage(w, r, http.StatusNotFound, "No such pairing", "Go back to the pairings.")
		return
	} else if err != nil {
		a.internalError(w, r, err)
		return
	}
	_, names, err := a.techniciansByID(r)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	v := timelineView{Pairing: p, Technician: names[p.TechnicianID]}
	steps, err := a.st.PairingSteps(ctx, p.ID)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	v.Steps = timelineSteps(p, steps)
	if err := a.st.SearchAudit(ctx, store.AuditFilter{Contains: "pairing=" + p.ID}, func(rec store.AuditRecord) error {
		v.Events = append(v.Events, rec)
		return nil
	}); err != nil {
		a.internalError(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "operator-timeline", page{Title: "Pairing " + p.ID, Op: v})
}

// auditFilter reads the audit trail's filter.
func auditFilter(r *http.Request) (store.AuditFilter, map[string]string, error) {
	q, err := decodeQuery(r, "actor", "event", "device", "text", "from", "until")
	if err != nil {
		return store.AuditFilter{}, nil, err
	}
	f := store.AuditFilter{Actor: strings.TrimSpace(q["actor"]), Event: strings.TrimSpace(q["event"]), DeviceID: strings.TrimSpace(q["device"]), Contains: q["text"]}
	if f.Since, err = parseFilterTime("from", q["from"]); err == nil {
		f.Until, err = parseFilterTime("until", q["until"])
	}
	return f, q, err
}

func (a *App) auditPage(w http.ResponseWriter, r *http.Request) {
	f, q, err := auditFilter(r)
	if err != nil {
		a.formRefused(w, r, err)
		return
	}
	f.NewestFirst, f.Limit = true, auditShown+1
	v := auditView{Filter: q, ExportJSONL: "/operator/audit.jsonl", ExportCSV: "/operator/audit.csv"}
	vals := url.Values{}
	for k, x := range q {
		if x != "" {
			vals.Set(k, x)
		}
	}
	if enc := vals.Encode(); enc != "" {
		v.ExportJSONL += "?" + enc
		v.ExportCSV += "?" + enc
	}
	if err := a.st.SearchAudit(r.Context(), f, func(rec store.AuditRecord) error {
		v.Records = append(v.Records, rec)
		return nil
	}); err != nil {
		a.internalError(w, r, err)
		return
	}
	if len(v.Records) > auditShown {
		v.Records, v.Limited = v.Records[:auditShown], true
	}
	a.render(w, r, http.StatusOK, "operator-audit", page{Title: "Audit trail", Op: v})
}

// auditExport writes the records the filter selects, oldest first, as
// JSON Lines (the records as zm-central audit export writes them) or CSV
// (id, at, actor, event, deviceId, detail), as a download. The export is
// itself audited.
func (a *App) auditExport(format string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, _, err := auditFilter(r)
		if err != nil {
			a.formRefused(w, r, err)
			return
		}
		a.audit(r.Context(), userOf(r).ID, "audit.export", format+" "+r.URL.RawQuery)
		name := "audit-" + a.cfg.Clock.Now().UTC().Format("20060102T150405Z")
		var write func(store.AuditRecord) error
		var flush func() error
		switch format {
		case "csv":
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
			cw := csv.NewWriter(w)
			if err := cw.Write([]string{"id", "at", "actor", "event", "deviceId", "detail"}); err != nil {
				return
			}
			write = func(rec store.AuditRecord) error {
				return cw.Write([]string{strconv.FormatInt(rec.ID, 10), rec.At.UTC().Format(time.RFC3339Nano), rec.Actor, rec.Event, rec.DeviceID, csvSafe(rec.Detail)})
			}
			flush = func() error { cw.Flush(); return cw.Error() }
		default:
			w.Header().Set("Content-Type", "application/jsonl; charset=utf-8")
			w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.jsonl"`)
			enc := json.NewEncoder(w)
			write = func(rec store.AuditRecord) error { return enc.Encode(rec) }
			flush = func() error { return nil }
		}
		if err := a.st.SearchAudit(r.Context(), f, write); err != nil {
			// The status is sent: the download ends short, said in the log.
			a.log.Error("audit export", "err", err)
			return
		}
		if err := flush(); err != nil {
			a.log.Error("audit export", "err", fmt.Errorf("flush: %w", err))
		}
	}
}

// csvSafe keeps a spreadsheet from reading a cell as a formula (a detail
// is text from the network: a device ID, a message).
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
