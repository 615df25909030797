package webapp

import (
	"errors"
	"net/http"

	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// Batch mode: the technician scans device after device without leaving
// the page. GET /batch is the camera and a list; each QR code read there
// (once per page) is posted to POST /batch/pairings, which starts the
// pairing at once (the same server.Pair as Provision) and answers JSON;
// the page adds a row and follows that pairing's own event stream
// (/pairings/{id}/events), so every row moves on its own.

func (a *App) batchPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "batch", page{Title: "Batch", Scripts: []string{"batch.js"}, Steps: deviceSteps})
}

// batchPairing starts the pairing of one scanned QR code: 200 with the
// pairing (tabletwire.Accepted), or the refusal's problem (title, action,
// code) with its status. A refusal that was recorded has a pairing, and
// its stream says so.
func (a *App) batchPairing(w http.ResponseWriter, r *http.Request) {
	f, err := decodeForm(w, r, "qr")
	if err != nil {
		var fe *formError
		status, msg := http.StatusBadRequest, err.Error()
		if errors.As(err, &fe) {
			msg = fe.msg
			status = fe.status
		}
		writeJSON(w, status, tabletwire.ErrorBody{Title: "Form not accepted", Action: msg})
		return
	}
	if f["qr"] == "" {
		writeJSON(w, http.StatusBadRequest, tabletwire.ErrorBody{Title: "Form not accepted", Action: "the QR code's text is missing"})
		return
	}
	acc, err := a.api.Pair(r.Context(), userOf(r).Technician, tabletwire.PairingRequest{QR: f["qr"]})
	if err != nil && acc.PairingID == "" {
		body, status := a.api.Problem(err)
		writeJSON(w, status, body)
		return
	}
	writeJSON(w, http.StatusOK, acc)
}
