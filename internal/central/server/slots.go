package server

import (
	"context"
	"sync"
)

// slots bounds the provisionings in flight (Config.MaxInFlight) and is the
// only code that takes or gives back one. A slot is taken by tryAcquire (a
// single pairing: refused with Busy when none is free, before anything is
// claimed) or by acquire (a batch worker: it waits its turn, or gives up
// when the server closes), and given back by the release function both
// return. release is never nil and may be called more than once (an early
// release on an error path and a deferred one): only the first call gives
// the slot back, so no path can free a slot it does not hold.
type slots struct {
	held chan struct{} // one element per slot taken
}

func newSlots(n int) *slots { return &slots{held: make(chan struct{}, n)} }

// tryAcquire takes a slot if one is free. ok is false when none is; release
// is then a no-op.
func (s *slots) tryAcquire() (release func(), ok bool) {
	select {
	case s.held <- struct{}{}:
		return s.releaser(), true
	default:
		return func() {}, false
	}
}

// acquire waits for a slot until ctx is done. A done ctx takes no slot,
// even when one is free; release is then a no-op.
func (s *slots) acquire(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return func() {}, err
	}
	select {
	case s.held <- struct{}{}:
		return s.releaser(), nil
	case <-ctx.Done():
		return func() {}, ctx.Err()
	}
}

func (s *slots) releaser() func() {
	var once sync.Once
	return func() { once.Do(func() { <-s.held }) }
}

// inUse is the number of slots taken.
func (s *slots) inUse() int { return len(s.held) }

// size is the number of slots.
func (s *slots) size() int { return cap(s.held) }
