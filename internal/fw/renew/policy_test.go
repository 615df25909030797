package renew

import (
	"crypto/x509"
	"math/rand/v2"
	"testing"
	"time"
)

func TestPolicy(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &x509.Certificate{NotBefore: nb, NotAfter: nb.Add(300 * 24 * time.Hour)}
	p := DefaultPolicy
	if got, want := p.Due(c), nb.Add(200*24*time.Hour); !got.Equal(want) {
		t.Errorf("Due = %v, want %v (two thirds)", got, want)
	}
	if w := p.Wait(c, nb); w != p.Check {
		t.Errorf("Wait long before due = %v, want Check %v", w, p.Check)
	}
	if w := p.Wait(c, nb.Add(200*24*time.Hour-time.Minute)); w != time.Minute {
		t.Errorf("Wait a minute before due = %v", w)
	}
	if w := p.Wait(c, nb.Add(250*24*time.Hour)); w != 0 {
		t.Errorf("Wait past due = %v", w)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for failures, full := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute, 12: 6 * time.Hour, 1000: 6 * time.Hour} {
		for range 50 {
			if d := p.Retry(failures, r); d < full/2 || d > full {
				t.Fatalf("Retry(%d) = %v, want in [%v, %v]", failures, d, full/2, full)
			}
		}
	}
	if p.Warn(c, nb.Add(280*24*time.Hour), 0) {
		t.Error("warned without a failed attempt")
	}
	if p.Warn(c, nb.Add(200*24*time.Hour), 3) {
		t.Error("warned 100 days before expiry")
	}
	if !p.Warn(c, nb.Add(280*24*time.Hour), 1) || !p.Warn(c, nb.Add(301*24*time.Hour), 1) {
		t.Error("no warning within 30 days of expiry (or after it) with renewal failing")
	}
	if (Policy{}).WithDefaults() != DefaultPolicy {
		t.Error("the zero Policy is not the default")
	}
}
