package webapp

import (
	"net/http"

	"github.com/zmonitor/firmware/internal/central/store"
)

// routes declares every browser route, in one place. A page or action
// that needs a session says with which role (signedIn); an operator may
// use everything a technician may. The operator's pages are added here
// under /operator/ (signedIn(store.RoleOperator, ...)).
func (a *App) routes() {
	m := a.browser
	tech := func(h http.HandlerFunc) http.HandlerFunc { return a.signedIn(store.RoleTechnician, h) }
	op := func(h http.HandlerFunc) http.HandlerFunc { return a.signedIn(store.RoleOperator, h) }

	// Files: CSS, ES modules, the vendored QR decoder.
	m.Handle("GET /static/", a.static)

	// Signing in and registering a tablet: no session needed.
	m.HandleFunc("GET /sign-in", a.signInPage)
	m.HandleFunc("GET /enroll", a.enrollPage)
	m.HandleFunc("POST /webauthn/register/begin", a.registerBegin)
	m.HandleFunc("POST /webauthn/register/finish", a.registerFinish)
	m.HandleFunc("POST /webauthn/sign-in/begin", a.signInBegin)
	m.HandleFunc("POST /webauthn/sign-in/finish", a.signInFinish)
	m.HandleFunc("POST /sign-out", tech(a.signOut))

	// The technician's path: scan (or type), check, provision, follow.
	m.HandleFunc("GET /{$}", tech(a.home))
	m.HandleFunc("GET /scan", tech(a.scanPage))
	m.HandleFunc("GET /code", tech(a.codePage))
	m.HandleFunc("POST /preview", tech(a.preview))
	m.HandleFunc("POST /pairings", tech(a.provision))
	m.HandleFunc("GET /pairings", tech(a.myPairings))
	m.HandleFunc("GET /pairings/{id}", tech(a.pairingPage))
	m.HandleFunc("GET /pairings/{id}/events", tech(a.pairingEvents))
	m.HandleFunc("GET /batch", tech(a.batchPage))
	m.HandleFunc("POST /batch/pairings", tech(a.batchPairing))

	// The operator's pages: the inventory, the technicians and their
	// passkeys, the pairings with their timelines, the audit trail, the
	// certificates, the status panel.
	m.HandleFunc("GET /operator/devices", op(a.inventoryPage))
	m.HandleFunc("POST /operator/devices/import", op(a.importDevices))
	m.HandleFunc("POST /operator/devices/{id}/label", op(a.labelDevice))
	m.HandleFunc("POST /operator/devices/{id}/revoke", op(a.revokeDevice))
	m.HandleFunc("POST /operator/devices/{id}/decommission", op(a.decommissionDevice))
	m.HandleFunc("GET /operator/technicians", op(a.techniciansPage))
	m.HandleFunc("POST /operator/technicians", op(a.addTechnician))
	m.HandleFunc("POST /operator/technicians/{id}/enroll", op(a.newEnrollmentLink))
	m.HandleFunc("POST /operator/technicians/{id}/revoke", op(a.revokeTechnician))
	m.HandleFunc("POST /operator/passkeys/{id}/revoke", op(a.revokePasskey))
	m.HandleFunc("GET /operator/pairings", op(a.pairingsPage))
	m.HandleFunc("GET /operator/pairings/{id}", op(a.pairingTimeline))
	m.HandleFunc("GET /operator/audit", op(a.auditPage))
	m.HandleFunc("GET /operator/audit.jsonl", op(a.auditExport("jsonl")))
	m.HandleFunc("GET /operator/audit.csv", op(a.auditExport("csv")))
	m.HandleFunc("GET /operator/certificates", op(a.certificatesPage))
	m.HandleFunc("GET /operator/status", op(a.statusPage))

	// Anything else.
	m.HandleFunc("/", a.notFound)
}
