package boot

import (
	"context"
	"log/slog"
	"sync"
)

// heldHandler holds log records below Warn until release is called, then
// writes them in order and passes everything straight through. PID 1 holds
// the verbose start-up log (the boot trace, the data partition, the DHCP
// lease) until the first frame is on the panel or the engine runs: the console is a UART that QEMU emulates
// one character at a time, and ~2,500 characters of trace cost the start-up
// tens of milliseconds of the very time they measure. Warnings and errors
// are never held: a technician watching a failing boot sees them at once.
type heldHandler struct {
	next  slog.Handler
	state *heldState
}

type heldState struct {
	mu      sync.Mutex
	holding bool
	held    []heldRecord
}

type heldRecord struct {
	h slog.Handler
	r slog.Record
}

func newHeldHandler(next slog.Handler) *heldHandler {
	return &heldHandler{next: next, state: &heldState{holding: true}}
}

func (h *heldHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *heldHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		h.state.mu.Lock()
		if h.state.holding {
			h.state.held = append(h.state.held, heldRecord{h.next, r.Clone()})
			h.state.mu.Unlock()
			return nil
		}
		h.state.mu.Unlock()
	}
	return h.next.Handle(ctx, r)
}

func (h *heldHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &heldHandler{next: h.next.WithAttrs(as), state: h.state}
}

func (h *heldHandler) WithGroup(name string) slog.Handler {
	return &heldHandler{next: h.next.WithGroup(name), state: h.state}
}

// release writes the held records and stops holding. Records logged while
// it writes wait their turn, so the order is kept.
func (h *heldHandler) release() {
	s := h.state
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, hr := range s.held {
		_ = hr.h.Handle(context.Background(), hr.r)
	}
	s.held, s.holding = nil, false
}
