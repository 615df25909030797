package renew

import (
	"crypto/x509"
	"math/rand/v2"
	"time"
)

// Policy says when a certificate is renewed and how failures are retried.
// The zero value of a field means DefaultPolicy's.
type Policy struct {
	// At is the fraction of the certificate's validity after which it is
	// renewed (default 2/3).
	At float64
	// RetryMin is the wait after the first failure; it doubles after each
	// further failure up to RetryMax. Each wait is jittered to between
	// half and all of it, so that devices that failed together (a Central
	// Station outage) do not come back together.
	RetryMin, RetryMax time.Duration
	// WarnWithin: the screen warns once the certificate expires within
	// this time and the last renewal attempt failed.
	WarnWithin time.Duration
	// Check is the longest the device waits between looks at the clock
	// before the renewal is due (the time it learns from servers can jump
	// forward).
	Check time.Duration
}

// DefaultPolicy is the device's renewal policy.
var DefaultPolicy = Policy{
	At:         2.0 / 3.0,
	RetryMin:   time.Minute,
	RetryMax:   6 * time.Hour,
	WarnWithin: 30 * 24 * time.Hour,
	Check:      6 * time.Hour,
}

// WithDefaults fills the zero fields from DefaultPolicy.
func (p Policy) WithDefaults() Policy {
	d := DefaultPolicy
	if p.At <= 0 || p.At >= 1 {
		p.At = d.At
	}
	if p.RetryMin <= 0 {
		p.RetryMin = d.RetryMin
	}
	if p.RetryMax < p.RetryMin {
		p.RetryMax = max(d.RetryMax, p.RetryMin)
	}
	if p.WarnWithin <= 0 {
		p.WarnWithin = d.WarnWithin
	}
	if p.Check <= 0 {
		p.Check = d.Check
	}
	return p
}

// Due is when c is to be renewed: At of the way from its not-before to its
// not-after.
func (p Policy) Due(c *x509.Certificate) time.Time {
	p = p.WithDefaults()
	life := c.NotAfter.Sub(c.NotBefore)
	return c.NotBefore.Add(time.Duration(float64(life) * p.At))
}

// Retry is the wait before the next attempt after failures consecutive
// failures (≥ 1): RetryMin doubled per failure, at most RetryMax, jittered
// to [d/2, d) by r (nil: math/rand/v2's global source).
func (p Policy) Retry(failures int, r *rand.Rand) time.Duration {
	p = p.WithDefaults()
	d := p.RetryMin
	for i := 1; i < failures && d < p.RetryMax; i++ {
		d *= 2
	}
	d = min(d, p.RetryMax)
	half := int64(d / 2)
	var j int64
	if r != nil {
		j = r.Int64N(half + 1)
	} else {
		j = rand.Int64N(half + 1)
	}
	return time.Duration(half + j)
}

// Warn reports whether the screen warns: the certificate expires within
// WarnWithin of now (or has expired) and renewal has failed since it was
// due.
func (p Policy) Warn(c *x509.Certificate, now time.Time, failures int) bool {
	p = p.WithDefaults()
	return failures > 0 && c.NotAfter.Sub(now) < p.WarnWithin
}

// Wait is how long the device waits before it looks again: until the
// certificate is due, at most Check.
func (p Policy) Wait(c *x509.Certificate, now time.Time) time.Duration {
	p = p.WithDefaults()
	return max(0, min(p.Due(c).Sub(now), p.Check))
}
