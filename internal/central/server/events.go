package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// Progress is pushed to the tablet as server-sent events
// (text/event-stream): GET /v1/pairings/{id}/events, and the web app's
// stream of the same. Each event is the pairing's whole view:
//
//	event: pairing
//	data: {"id":"p-…","state":"running","deviceState":"APPLYING_CONFIG",…}
//
// The first event is the pairing as it stands; one follows each change;
// the stream ends after the final view. A comment line (": keep-alive")
// is written when nothing happened for KeepAlive, so that a dead tablet is
// noticed and proxies keep the connection.
//
// The runner publishes each change of a pairing it runs to the hub of its
// own replica (after writing it to the store), so a stream on the replica
// that runs the job sees every step at once. A stream on another replica
// reads the store every Config.EventsResync instead: the store is the only
// state replicas share.

// Defaults of the event streams.
const (
	DefaultKeepAlive    = 15 * time.Second
	DefaultEventsResync = time.Second
	// DefaultMaxStream bounds one stream; a tablet that still follows
	// reconnects.
	DefaultMaxStream = 15 * time.Minute
)

// hub hands the changes of the pairings this replica runs to the streams
// that follow them.
type hub struct {
	mu   sync.Mutex
	subs map[string]map[*subscription]struct{}
	// settling holds the pairings whose outcome this replica is writing
	// (from before FinishPairing until the claims are given back): a
	// stream that reads such a pairing final waits for the settled view.
	settling map[string]bool
	// streaming, when set (tests), is called with the pairing ID once a
	// stream has sent its first view.
	streaming func(id string)
}

// subscription is one stream's queue of changes. When a slow stream lets
// its queue fill up, later changes are dropped and lost is set: the stream
// then reads the store.
type subscription struct {
	ch   chan store.Pairing
	mu   sync.Mutex
	lost bool
}

func newHub() *hub {
	return &hub{subs: map[string]map[*subscription]struct{}{}, settling: map[string]bool{}}
}

// settle marks pairing id as having its outcome written (on) or written
// (off).
func (h *hub) settle(id string, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if on {
		h.settling[id] = true
	} else {
		delete(h.settling, id)
	}
}

func (h *hub) isSettling(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.settling[id]
}

func (h *hub) subscribe(id string) (*subscription, func()) {
	sub := &subscription{ch: make(chan store.Pairing, 32)}
	h.mu.Lock()
	if h.subs[id] == nil {
		h.subs[id] = map[*subscription]struct{}{}
	}
	h.subs[id][sub] = struct{}{}
	h.mu.Unlock()
	return sub, func() {
		h.mu.Lock()
		delete(h.subs[id], sub)
		if len(h.subs[id]) == 0 {
			delete(h.subs, id)
		}
		h.mu.Unlock()
	}
}

// publish hands p to every stream following it, never waiting.
func (h *hub) publish(p store.Pairing) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs[p.ID] {
		select {
		case sub.ch <- p:
		default:
			sub.mu.Lock()
			sub.lost = true
			sub.mu.Unlock()
		}
	}
}

// takeLost reports (and clears) whether changes were dropped.
func (s *subscription) takeLost() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	lost := s.lost
	s.lost = false
	return lost
}

// published reads pairing id back from the store and publishes it. The
// runner calls it after each write.
func (s *Server) published(ctx context.Context, id string) {
	p, err := s.st.Pairing(ctx, id)
	if err != nil {
		s.storeError("read back pairing for its followers", err, "pairing", id)
		return
	}
	s.hub.publish(p)
}

// ErrNotYours: a technician asked for another technician's pairing. It is
// answered as NOT_FOUND: a technician does not learn which pairings exist.
var ErrNotYours = errors.New("not this technician's pairing")

// PairingFor returns pairing id as t may see it: a technician sees their
// own pairings, an operator everyone's. Any other is a NotFound refusal.
func (s *Server) PairingFor(ctx context.Context, t store.Technician, id string) (store.Pairing, error) {
	if !validID(pairingIDPrefix, id) {
		return store.Pairing{}, refuse(NotFound, "no such pairing: not a pairing ID")
	}
	p, err := s.st.Pairing(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Pairing{}, refuse(NotFound, "no such pairing")
	}
	if err != nil {
		return store.Pairing{}, err
	}
	if t.Role != store.RoleOperator && p.TechnicianID != t.ID {
		return store.Pairing{}, refuse(NotFound, "no such pairing")
	}
	return p, nil
}

// ServeEvents streams the progress of pairing id to t as server-sent
// events until it is final (see the top of this file). Refusals (no such
// pairing, not t's) are answered as JSON before the stream starts.
func (s *Server) ServeEvents(w http.ResponseWriter, r *http.Request, t store.Technician, id string) {
	ctx := r.Context()
	if _, err := s.PairingFor(ctx, t, id); err != nil {
		s.writeRefusal(w, err, "")
		return
	}
	sub, unsubscribe := s.hub.subscribe(id)
	defer unsubscribe()
	// Subscribed first, then read: no change falls between the two.
	p, err := s.st.Pairing(ctx, id)
	if err != nil {
		s.writeRefusal(w, err, "")
		return
	}
	// Final, but maybe not settled (its claims about to be given back):
	// while this replica settles it, its settled view comes to sub; once
	// settled, the store has it.
	if p.State.Final() {
		if s.hub.isSettling(id) {
			tick := s.cfg.Clock.NewTimer(s.cfg.EventsResync)
			select {
			case p = <-sub.ch:
			case <-tick.C():
				// Not published (a store error): the store says.
				p, err = s.st.Pairing(ctx, id)
			case <-ctx.Done():
				tick.Stop()
				return
			}
			tick.Stop()
			if err != nil {
				s.writeRefusal(w, err, "")
				return
			}
		} else if p, err = s.st.Pairing(ctx, id); err != nil {
			s.writeRefusal(w, err, "")
			return
		}
	}
	rc := http.NewResponseController(w)
	// The server's read timeout would end a long stream (net/http cancels
	// the request when its background read times out).
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", tabletwire.EventStreamType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	send := func(b []byte) bool {
		// Deadlines of the connection are real time, whatever the clock.
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	var last tabletwire.PairingView
	sendView := func(p store.Pairing) (final, ok bool) {
		v := pairingView(p)
		if last.ID != "" && sameProgress(v, last) {
			return v.Final, true
		}
		last = v
		b, err := json.Marshal(v)
		if err != nil {
			return false, false
		}
		return v.Final, send(fmt.Appendf(nil, "event: %s\ndata: %s\n\n", tabletwire.EventPairing, b))
	}
	if final, ok := sendView(p); final || !ok {
		return
	}
	if s.hub.streaming != nil {
		s.hub.streaming(id)
	}
	start := s.cfg.Clock.Now()
	lastWrite := start
	for {
		tick := s.cfg.Clock.NewTimer(s.cfg.EventsResync)
		var p store.Pairing
		select {
		case <-ctx.Done():
			tick.Stop()
			return
		case p = <-sub.ch:
			tick.Stop()
			if sub.takeLost() {
				if p, err = s.st.Pairing(ctx, id); err != nil {
					return
				}
			}
		case <-tick.C():
			now := s.cfg.Clock.Now()
			if now.Sub(start) >= s.cfg.MaxStream {
				return
			}
			if p, err = s.st.Pairing(ctx, id); err != nil {
				return
			}
			if v := pairingView(p); sameProgress(v, last) {
				if now.Sub(lastWrite) >= s.cfg.KeepAlive {
					if !send([]byte(": keep-alive\n\n")) {
						return
					}
					lastWrite = now
				}
				continue
			}
		}
		final, ok := sendView(p)
		if final || !ok {
			return
		}
		lastWrite = s.cfg.Clock.Now()
	}
}

// sameProgress reports whether a and b show the same progress.
func sameProgress(a, b tabletwire.PairingView) bool {
	return a.State == b.State && a.DeviceState == b.DeviceState && a.Step == b.Step && a.Final == b.Final
}

// getEvents is GET /v1/pairings/{id}/events.
func (s *Server) getEvents(w http.ResponseWriter, r *http.Request, t store.Technician) {
	s.ServeEvents(w, r, t, r.PathValue("id"))
}
