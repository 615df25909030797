package engine

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/endpoint"
)

// Refusal aggregation. The endpoint's connections report refusals from
// their own goroutines, as fast as anyone on the network can open
// connections: they must neither wait for the owner nor cost an fsynced
// audit record each. The first refusal of a (who, code) in an interval is
// recorded at once; the ones after it are counted and recorded as one
// REQUEST_REFUSED with count=N when the interval ends or the port closes.
const (
	// DefaultRefusalInterval is Options.RefusalInterval's default.
	DefaultRefusalInterval = 10 * time.Second
	// maxRefusalKeys bounds the (who, code) pairs counted at once; refusals
	// from further addresses are counted together as "remote:others".
	maxRefusalKeys = 32
)

type refusalKey struct {
	actor string
	code  string
}

// refusalWindow is one (who, code) in one interval.
type refusalWindow struct {
	start  time.Time
	reason string // of the first refusal
	more   int    // refusals after the first, not recorded yet
}

// refusals is the bounded, non-blocking queue between the endpoint's
// connections and the owner, which writes the audit records.
type refusals struct {
	interval time.Duration
	now      func() time.Time
	kick     chan struct{} // the owner has records to write

	mu      sync.Mutex
	windows map[refusalKey]*refusalWindow
	first   []audit.Event // first refusals, to record now
}

func newRefusals(interval time.Duration, now func() time.Time) *refusals {
	return &refusals{interval: interval, now: now, kick: make(chan struct{}, 1), windows: make(map[refusalKey]*refusalWindow)}
}

// add counts r. It never blocks.
func (q *refusals) add(r endpoint.Refusal) {
	reason := ""
	if r.Err != nil {
		reason = r.Err.Error()
	}
	k := refusalKey{actor: actorOf(r.Peer, r.Remote), code: r.Code.String()}
	now := q.now()
	q.mu.Lock()
	w, ok := q.windows[k]
	if !ok && len(q.windows) >= maxRefusalKeys {
		k.actor = "remote:others"
		w, ok = q.windows[k]
	}
	if ok {
		w.more++
		q.mu.Unlock()
		return
	}
	q.windows[k] = &refusalWindow{start: now, reason: reason}
	q.first = append(q.first, audit.Event{Event: "REQUEST_REFUSED", Code: k.code, Actor: k.actor, Reason: reason})
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default: // the owner has been told already
	}
}

// due returns the records to write now: the first refusals, and the counts
// of the intervals that ended (all of them when closing). next is when the
// earliest open interval ends (zero: none open).
func (q *refusals) due(closing bool) (recs []audit.Event, next time.Time) {
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	recs, q.first = q.first, nil
	for k, w := range q.windows {
		end := w.start.Add(q.interval)
		if !closing && now.Before(end) {
			if next.IsZero() || end.Before(next) {
				next = end
			}
			continue
		}
		delete(q.windows, k)
		if w.more > 0 {
			recs = append(recs, audit.Event{Event: "REQUEST_REFUSED", Code: k.code, Actor: k.actor,
				Reason: fmt.Sprintf("count=%d more within %s of the first; first: %s", w.more, q.interval, w.reason)})
		}
	}
	return recs, next
}

// actorOf names who was refused: the Central Station when its certificate
// was proven, otherwise the remote address without its port (so that one
// address is one actor whatever ports it uses).
func actorOf(peer, remote string) string {
	switch {
	case peer != "":
		return "central-station:" + peer
	case remote != "":
		if h, _, err := net.SplitHostPort(remote); err == nil {
			return "remote:" + h
		}
		return "remote:" + remote
	}
	return "remote"
}

// recordRefusals writes the refusal records that are due, and arms the
// timer for the next interval's end. closing flushes every count (the port
// closes).
func (e *Engine) recordRefusals(closing bool) {
	recs, next := e.refused.due(closing)
	for _, ev := range recs {
		e.record(ev)
	}
	if e.refuseT != nil && next.Equal(e.refuseAt) {
		return // armed for that already
	}
	if e.refuseT != nil {
		e.refuseT.Stop()
		e.refuseT = nil
	}
	e.refuseAt = next
	if !next.IsZero() {
		e.refuseT = e.d.Clock.NewTimer(next.Sub(e.d.Clock.Now()))
	}
}
