package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/zmonitor/firmware/internal/central/server"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/central/webapp"
)

// What serve does at start and then periodically besides serving.

const (
	// resolveEvery: how often certificates left issued are looked at
	// again (those younger than unconfirmedAge at start, a device's
	// later renewal).
	resolveEvery = 5 * time.Minute
	// warnEvery: how often the expiry of the Central Station's own
	// certificates is logged.
	warnEvery = 24 * time.Hour
	// unconfirmedAge: a certificate issued longer ago than this cannot
	// belong to a pairing still running anywhere (a job ends within
	// server.DefaultJobTimeout, and records its outcome within 30 s more),
	// on this process or a replica.
	unconfirmedAge = server.DefaultJobTimeout + time.Minute
)

// resolveUnconfirmed settles the certificates a stopped Central Station
// left issued (store.ResolveUnconfirmed) and logs each.
func resolveUnconfirmed(ctx context.Context, st store.Store, log *slog.Logger) {
	rs, err := st.ResolveUnconfirmed(ctx, time.Now().Add(-unconfirmedAge))
	if err != nil {
		log.Error("resolve certificates left issued", "err", err)
	}
	for _, r := range rs {
		outcome := "revoked (not-delivered)"
		if r.Delivered {
			outcome = "in use"
		}
		log.Warn("certificate left issued by an interrupted Central Station resolved", "serial", r.Serial, "device", r.DeviceID,
			"pairing", r.PairingID, "outcome", outcome, "evidence", r.Evidence)
	}
}

// warnExpiring logs a warning for each of the Central Station's own
// certificates that ends within 30 days (or has ended).
func warnExpiring(log *slog.Logger, certs []webapp.NamedCertificate, now time.Time) {
	for _, c := range certs {
		left := c.Cert.NotAfter.Sub(now)
		if left >= expiryWarning {
			continue
		}
		msg := "Central Station certificate expires within 30 days"
		if left <= 0 {
			msg = "Central Station certificate EXPIRED"
		}
		log.Warn(msg, "certificate", c.Name, "subject", c.Cert.Subject.CommonName, "serial", store.CertificateSerial(c.Cert),
			"notAfter", c.Cert.NotAfter.UTC().Format(time.RFC3339), "daysLeft", int(left.Hours()/24), "renew", c.Renew)
	}
}

// housekeeping runs resolveUnconfirmed and warnExpiring now and then
// periodically until ctx ends.
func housekeeping(ctx context.Context, st store.Store, certs []webapp.NamedCertificate, log *slog.Logger) {
	resolveUnconfirmed(ctx, st, log)
	warnExpiring(log, certs, time.Now())
	resolve, warn := time.NewTicker(resolveEvery), time.NewTicker(warnEvery)
	defer resolve.Stop()
	defer warn.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-resolve.C:
			resolveUnconfirmed(ctx, st, log)
		case <-warn.C:
			warnExpiring(log, certs, time.Now())
		}
	}
}
