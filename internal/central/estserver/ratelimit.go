package estserver

import (
	"sync"
	"time"
)

// Per-device limit on simple re-enrollment: a device renews about once in
// 265 days and retries a failed attempt after 1 min, 2 min, 4 min, ...
// (jittered), so it makes at most 8 attempts in its first hour of failing;
// DefaultRenewalsPerHour leaves room for those and stops a device (or a
// stolen certificate) that asks in a loop, each request costing a
// signature, a database transaction and a row kept for ever.

// ProblemTooManyRequests: the device made more requests than its limit
// (429, with Retry-After).
const ProblemTooManyRequests = "urn:zmonitor:problem:too-many-requests"

// DefaultRenewalsPerHour is the default limit of simple re-enrollment
// requests per device per hour.
const DefaultRenewalsPerHour = 10

// RateLimit bounds the simple re-enrollment requests of one device.
type RateLimit struct {
	// Requests a device may make in any window of Interval.
	Requests int
	Interval time.Duration
}

// limiter keeps, per device, the times of its requests in the last
// interval (a sliding log: exactly Requests per Interval, no burst at a
// window's edge). Only devices that authenticated with a certificate of
// this Central Station get an entry, so the map is bounded by the
// inventory; entries idle for an interval are dropped.
type limiter struct {
	limit RateLimit
	mu    sync.Mutex
	dev   map[string]*deviceLog
	calls int
}

type deviceLog struct {
	times []time.Time
	// auditedUntil: the refusal is audited once per interval.
	auditedUntil time.Time
}

func newLimiter(l RateLimit) *limiter {
	return &limiter{limit: l, dev: map[string]*deviceLog{}}
}

// verdict of one request.
type verdict struct {
	ok bool
	// retryAfter: when refused, the wait until the oldest request leaves
	// the window.
	retryAfter time.Duration
	// audit: when refused, the first refusal of this interval.
	audit bool
}

// take counts a request of device at now, or refuses it.
func (l *limiter) take(device string, now time.Time) verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.calls%1024 == 0 {
		l.prune(now)
	}
	d := l.dev[device]
	if d == nil {
		d = &deviceLog{}
		l.dev[device] = d
	}
	from := now.Add(-l.limit.Interval)
	kept := d.times[:0]
	for _, t := range d.times {
		if t.After(from) {
			kept = append(kept, t)
		}
	}
	d.times = kept
	if len(d.times) < l.limit.Requests {
		d.times = append(d.times, now)
		return verdict{ok: true}
	}
	v := verdict{retryAfter: d.times[0].Add(l.limit.Interval).Sub(now)}
	if !now.Before(d.auditedUntil) {
		v.audit = true
		d.auditedUntil = now.Add(l.limit.Interval)
	}
	return v
}

// prune drops devices with no request in the last interval and no
// refusal audit pending.
func (l *limiter) prune(now time.Time) {
	from := now.Add(-l.limit.Interval)
	for id, d := range l.dev {
		if (len(d.times) == 0 || !d.times[len(d.times)-1].After(from)) && !now.Before(d.auditedUntil) {
			delete(l.dev, id)
		}
	}
}
