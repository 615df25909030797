package webapp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/ident"
)

// maxImportForm bounds the inventory import form: enrollment records
// pasted, or read from a file by the page's module (about 400 bytes a
// record: some 2500 records). Larger files: zm-central devices import.
const maxImportForm = 1 << 20

type inventoryView struct {
	Devices []store.Device
	// Results of an import just made, one row per record; Refusal a
	// file refused as a whole.
	Results []importRow
	Summary string
	Refusal string
}

type importRow struct {
	Index    int
	DeviceID string
	Outcome  string
	Refused  bool
}

func (a *App) inventoryPage(w http.ResponseWriter, r *http.Request) {
	a.renderInventory(w, r, http.StatusOK, inventoryView{})
}

func (a *App) renderInventory(w http.ResponseWriter, r *http.Request, status int, v inventoryView) {
	ds, err := a.st.Devices(r.Context())
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	v.Devices = ds
	a.render(w, r, status, "inventory", page{Title: "Inventory", Op: v, Scripts: []string{"import.js"}})
}

// importDevices imports the enrollment records of the form (JSON or CSV,
// as zm-central devices import), each on its own, and shows one result
// per record.
func (a *App) importDevices(w http.ResponseWriter, r *http.Request) {
	f, err := decodeFormMax(w, r, maxImportForm, "records", "records")
	if err != nil {
		a.formRefused(w, r, err)
		return
	}
	items, err := store.ParseEnrollments([]byte(f["records"]))
	if err != nil {
		a.renderInventory(w, r, http.StatusUnprocessableEntity, inventoryView{Refusal: err.Error()})
		return
	}
	outs, err := store.ImportEnrollments(r.Context(), a.st, userOf(r).ID, items)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	v := inventoryView{}
	count := map[string]int{}
	for _, o := range outs {
		row := importRow{Index: o.Item.Index, DeviceID: o.Item.DeviceID}
		if o.Err != nil {
			row.Outcome, row.Refused = "refused: "+o.Err.Error(), true
			count["refused"]++
		} else {
			row.Outcome = o.Result.String()
			count[row.Outcome]++
		}
		v.Results = append(v.Results, row)
	}
	v.Summary = fmt.Sprintf("%d added, %d updated, %d unchanged, %d refused", count["added"], count["updated"], count["unchanged"], count["refused"])
	a.renderInventory(w, r, http.StatusOK, v)
}

// labelDevice sets a device's label (pushed to it at its next pairing).
func (a *App) labelDevice(w http.ResponseWriter, r *http.Request) {
	f, err := decodeForm(w, r, "label")
	if err != nil {
		a.formRefused(w, r, err)
		return
	}
	if err := ident.CheckLabel(f["label"]); err != nil {
		a.errorPage(w, r, http.StatusBadRequest, "Label not accepted", fmt.Sprintf("%v.", err))
		return
	}
	d, ok := a.deviceOr404(w, r)
	if !ok {
		return
	}
	if err := a.st.SetDeviceLabel(r.Context(), d.ID, f["label"]); err != nil {
		a.internalError(w, r, err)
		return
	}
	a.auditDevice(r, "device.label", d.ID, f["label"])
	http.Redirect(w, r, "/operator/devices", http.StatusSeeOther)
}

// revokeDevice revokes a device: no pairing with it from then on.
// It asks for confirmation first (confirmed).
func (a *App) revokeDevice(w http.ResponseWriter, r *http.Request) {
	a.deviceAction(w, r, func(id string) confirmView {
		return confirmView{
			Question: "Revoke device " + id + "?",
			Effect:   "No technician can provision " + id + " from then on. This cannot be undone: to use it again, import its enrollment record again.",
			Button:   "Yes, revoke " + id,
		}
	}, func(ctx context.Context, d store.Device) (string, error) {
		if err := a.st.RevokeDevice(ctx, d.ID); err != nil {
			return "", err
		}
		a.auditDevice(r, "device.revoke", d.ID, "")
		return "device revoked", nil
	})
}

// decommissionDevice takes a device out of service, as zm-central devices
// decommission does: its certificates are revoked and the EST server tells
// the device at its next check-in to wipe its provisioning (its identity
// stays: a new pairing brings it back). Asked for confirmation first.
func (a *App) decommissionDevice(w http.ResponseWriter, r *http.Request) {
	a.deviceAction(w, r, func(id string) confirmView {
		return confirmView{
			Question: "Decommission device " + id + "?",
			Effect:   "Its certificates are revoked now; at its next check-in (within the hour) the monitor wipes its provisioning and shows Decommissioned. It stays enrolled: pairing it again brings it back.",
			Button:   "Yes, decommission " + id,
		}
	}, func(ctx context.Context, d store.Device) (string, error) {
		at, err := a.st.DecommissionDevice(ctx, d.ID)
		if err != nil {
			return "", err
		}
		a.auditDevice(r, "device.decommissioned", d.ID, "at="+at.UTC().Format(time.RFC3339)+"; the device is told to wipe its provisioning at its next EST request")
		return "device decommissioned", nil
	})
}

// deviceAction is an operator's action that takes a device out of use:
// confirmed first (ask names the device), then do, then every certificate
// of the device revoked, as zm-central devices revoke and decommission do
// (the CRL lists them and the monitoring server refuses the device); do
// returns why, for the certificates' audit records.
func (a *App) deviceAction(w http.ResponseWriter, r *http.Request, ask func(id string) confirmView, do func(context.Context, store.Device) (string, error)) {
	ok := a.confirmed(w, r, func() (confirmView, bool) {
		d, ok := a.deviceOr404(w, r)
		v := ask(d.ID)
		v.Cancel = "/operator/devices"
		return v, ok
	})
	if !ok {
		return
	}
	d, ok := a.deviceOr404(w, r)
	if !ok {
		return
	}
	why, err := do(r.Context(), d)
	if err == nil {
		_, err = store.RevokeDeviceCertificates(r.Context(), a.st, userOf(r).ID, d.ID, why)
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	http.Redirect(w, r, "/operator/devices", http.StatusSeeOther)
}

func (a *App) deviceOr404(w http.ResponseWriter, r *http.Request) (store.Device, bool) {
	d, err := a.st.Device(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		a.errorPage(w, r, http.StatusNotFound, "No such device", "Go back to the inventory.")
		return d, false
	} else if err != nil {
		a.internalError(w, r, err)
		return d, false
	}
	return d, true
}

// auditDevice appends an audit record about a device by the operator (as
// zm-central devices does, with the device's ID in its own column).
func (a *App) auditDevice(r *http.Request, event, deviceID, detail string) {
	if err := a.st.Audit(r.Context(), store.AuditRecord{Actor: userOf(r).ID, Event: event, DeviceID: deviceID, Detail: detail}); err != nil {
		a.log.Error("audit", "event", event, "err", err)
	}
}
