package webapp

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/zmonitor/firmware/internal/central/store"
)

// EnrollmentLink is a one-time link with which a technician registers a
// passkey on a tablet.
type EnrollmentLink struct {
	// URL is ORIGIN/enroll#TOKEN: the token is in the fragment, which a
	// browser sends to no server (request lines, logs and Referer never
	// hold it); the page's module posts it.
	URL       string
	ID        string
	ExpiresAt time.Time
}

// CreateEnrollmentLink makes a one-time enrollment link for technician
// techID, valid for EnrollmentLinkLifetime from now, and records it (its
// token hashed) and an audit record by actor. origin is the web app's
// (ParseOrigin). rnd draws the token (nil: crypto/rand).
func CreateEnrollmentLink(ctx context.Context, st store.Store, techID, actor, origin string, now time.Time, rnd io.Reader) (EnrollmentLink, error) {
	o, err := ParseOrigin(origin)
	if err != nil {
		return EnrollmentLink{}, err
	}
	t, err := st.Technician(ctx, techID)
	if err != nil {
		return EnrollmentLink{}, fmt.Errorf("enrollment link: %w", err)
	}
	if t.Revoked() {
		return EnrollmentLink{}, fmt.Errorf("enrollment link: technician %s is revoked", techID)
	}
	sec, err := store.EnrollmentSecret.New(rnd)
	if err != nil {
		return EnrollmentLink{}, err
	}
	exp := now.Add(EnrollmentLinkLifetime)
	if err := st.CreateEnrollmentLink(ctx, store.EnrollmentLink{ID: sec.ID, TechnicianID: techID, Hash: sec.Hash, CreatedBy: actor, ExpiresAt: exp}); err != nil {
		return EnrollmentLink{}, err
	}
	if err := st.Audit(ctx, store.AuditRecord{Actor: actor, Event: "enrollment.link_created", Detail: fmt.Sprintf("link=%s technician=%s expires=%s", sec.ID, techID, exp.UTC().Format(time.RFC3339))}); err != nil {
		return EnrollmentLink{}, err
	}
	return EnrollmentLink{URL: o.String() + "/enroll#" + sec.Token, ID: sec.ID, ExpiresAt: exp}, nil
}
