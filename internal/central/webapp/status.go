package webapp

import (
	"crypto/x509"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/zmonitor/firmware/internal/base/version"
	"github.com/zmonitor/firmware/internal/central/store"
)

// The operator's status panel and the certificates the Central Station
// issued.

// ExpirySoon: a certificate that ends within this is shown as close to
// expiry.
const ExpirySoon = 30 * 24 * time.Hour

// Listener is one socket the Central Station serves on, for the status
// panel.
type Listener struct {
	Name, Address string
}

// NamedCertificate is one of the Central Station's own certificates
// (device CA, provisioning root and signer, tablet server).
type NamedCertificate struct {
	Name string
	Cert *x509.Certificate
	// Renew says how to renew it (a command, or why it is not renewable
	// in place); shown when it is close to expiry.
	Renew string
}

// statusSources is what the status panel shows that the app does not own:
// set by zm-central serve once its listeners are up.
type statusSources struct {
	mu        sync.Mutex
	listeners []Listener
	certs     []NamedCertificate
}

// SetStatus tells the status panel the listeners and the Central
// Station's own certificates.
func (a *App) SetStatus(ls []Listener, certs []NamedCertificate) {
	a.status.mu.Lock()
	defer a.status.mu.Unlock()
	a.status.listeners = append([]Listener(nil), ls...)
	a.status.certs = append([]NamedCertificate(nil), certs...)
}

type certRow struct {
	Name, Subject, Serial, Renew string
	NotAfter                     time.Time
	DaysLeft                     int
	Soon                         bool
}

type statusView struct {
	Version, Build string
	Now            time.Time
	DBOK           bool
	DBError        string
	DBLatency      string
	Listeners      []Listener
	Own            []certRow
	OwnSoon        int
	Devices        int
	DeviceSoon     []store.IssuedCertificate
}

func (a *App) statusPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := a.cfg.Clock.Now()
	v := statusView{Version: version.Version, Build: version.Build().Format(time.RFC3339), Now: now}
	start := time.Now()
	if err := a.st.Ping(ctx); err != nil {
		// Said on the panel without its text (it may name hosts); logged.
		a.log.Error("status: database", "err", err)
		v.DBError = "the database does not answer (see the Central Station's log)"
	} else {
		v.DBOK, v.DBLatency = true, time.Since(start).Round(time.Microsecond).String()
	}
	a.status.mu.Lock()
	v.Listeners = append(v.Listeners, a.status.listeners...)
	for _, c := range a.status.certs {
		left := c.Cert.NotAfter.Sub(now)
		if left < ExpirySoon {
			v.OwnSoon++
		}
		v.Own = append(v.Own, certRow{Name: c.Name, Subject: c.Cert.Subject.CommonName, Serial: store.CertificateSerial(c.Cert), Renew: c.Renew, NotAfter: c.Cert.NotAfter, DaysLeft: int(left.Hours() / 24), Soon: left < ExpirySoon})
	}
	a.status.mu.Unlock()
	if v.DBOK {
		cs, err := a.st.AllCertificates(ctx)
		if err != nil {
			a.internalError(w, r, err)
			return
		}
		for _, c := range cs {
			if c.State == store.CertificateRevoked {
				continue
			}
			v.Devices++
			if c.NotAfter.Sub(now) < ExpirySoon {
				v.DeviceSoon = append(v.DeviceSoon, c)
			}
		}
		sort.Slice(v.DeviceSoon, func(i, j int) bool { return v.DeviceSoon[i].NotAfter.Before(v.DeviceSoon[j].NotAfter) })
	}
	a.render(w, r, http.StatusOK, "operator-status", page{Title: "Status", Op: v})
}

type certificatesView struct {
	Filter map[string]string
	States []string
	Rows   []store.IssuedCertificate
	Now    time.Time
}

// certificatesPage lists the certificates issued to devices, newest
// first, by device and state.
func (a *App) certificatesPage(w http.ResponseWriter, r *http.Request) {
	q, err := decodeQuery(r, "device", "state")
	if err != nil {
		a.formRefused(w, r, err)
		return
	}
	var state store.CertificateState
	if q["state"] != "" {
		if state, err = store.ParseCertificateState(q["state"]); err != nil {
			a.formRefused(w, r, badForm("state: %.40q is not a certificate state", q["state"]))
			return
		}
	}
	cs, err := a.st.AllCertificates(r.Context())
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	v := certificatesView{Filter: q, Now: a.cfg.Clock.Now()}
	for _, s := range []store.CertificateState{store.CertificateIssued, store.CertificateInUse, store.CertificateRevoked} {
		v.States = append(v.States, s.String())
	}
	for i := len(cs) - 1; i >= 0; i-- {
		c := cs[i]
		if (q["device"] == "" || c.DeviceID == q["device"]) && (state == 0 || c.State == state) {
			v.Rows = append(v.Rows, c)
		}
	}
	a.render(w, r, http.StatusOK, "operator-certificates", page{Title: "Certificates", Op: v})
}

// soon reports whether t is within ExpirySoon of now.
func soon(t, now time.Time) bool { return t.Sub(now) < ExpirySoon }
