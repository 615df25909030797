package audit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/zmonitor/firmware/internal/proto/auditlog"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/proto/auditcheckpoint"
)

// The anchorer is one goroutine per open log that does what would make an
// Append wait for the TPM: it writes the last record's place to the TPM's
// NV (the anchor) and has the device identity key sign checkpoints. An
// Append only wakes it.
//
// Anchor writes are batched: the anchorer writes the newest record's place
// each time it wakes, so records written while a write is in flight (a
// discrete TPM's NV write takes milliseconds) share the next one, and a
// token bucket (AnchorBurst writes at once, then one per AnchorRefill)
// bounds the NV writes a long run of records costs. Records written since
// the last anchor write are the ones a power cut can leave unanchored; Close
// anchors the last record whatever the bucket says.

// start runs the anchorer if the log has an anchor or a signer.
func (l *Log) start() {
	l.mu.Lock()
	if l.anchorAtOpen != nil {
		l.anchored = *l.anchorAtOpen
	}
	l.checkpointDue = l.o.Signer != nil && l.seq > 0
	l.mu.Unlock()
	if l.o.Anchor == nil && l.o.Signer == nil {
		close(l.stopped)
		return
	}
	go l.anchorer()
}

// halt stops the anchorer after it anchored the last record.
func (l *Log) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.stopped
}

func (l *Log) stopping() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

func (l *Log) anchorer() {
	defer close(l.stopped)
	burst := float64(l.o.AnchorBurst)
	tokens, refilled := burst, l.o.Mono.Now()
	var waiters []chan struct{}
	var failedCP mark // a checkpoint of this record failed: not again
	finalTried := false
	for {
		now := l.o.Mono.Now()
		tokens = min(burst, tokens+float64(now.Sub(refilled))/float64(l.o.AnchorRefill))
		refilled = now
		l.mu.Lock()
		target := mark{l.seq, l.last}
		segment := l.segments
		open := l.f != nil
		needAnchor := l.o.Anchor != nil && open && target.seq > 0 && target != l.anchored
		needCP := l.o.Signer != nil && open && l.checkpointDue && target.seq > 0 && target != failedCP
		l.mu.Unlock()
		stop := l.stopping()
		switch {
		case needAnchor && stop && !finalTried:
			finalTried = true
			l.writeAnchor(target)
			continue
		case needAnchor && !stop && tokens >= 1:
			tokens--
			if !l.writeAnchor(target) {
				// Wait a refill before trying again.
				tokens = min(tokens, 0)
			}
			continue
		case needCP && !stop:
			if !l.writeCheckpoint(target, segment) {
				failedCP = target
			}
			continue
		}
		for _, w := range waiters {
			close(w)
		}
		waiters = nil
		if stop {
			return
		}
		var t clock.Timer
		var tc <-chan time.Time
		if needAnchor {
			t = l.o.Mono.NewTimer(time.Duration((1 - tokens) * float64(l.o.AnchorRefill)))
			tc = t.C()
		}
		select {
		case <-l.kick:
		case <-tc:
		case w := <-l.flush:
			waiters = append(waiters, w)
		case <-l.stop:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// writeAnchor writes target to the TPM. It reports whether it succeeded; a
// failure is logged, and recorded once per boot.
func (l *Log) writeAnchor(target mark) bool {
	var h [32]byte
	if b, err := hex.DecodeString(target.hash); err == nil && len(b) == 32 {
		copy(h[:], b)
	}
	err := l.o.Anchor.WriteAuditAnchor(target.seq, h)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		l.anchored = target
		l.anchorWrites++
		l.anchorErr = nil
		return true
	}
	l.anchorErr = err
	l.o.Log.Error("audit: anchor in the TPM", "record", target.seq, "err", err)
	if !l.anchorFailRec && l.f != nil && l.broken == nil {
		l.anchorFailRec = true
		_, _ = l.appendLocked(Event{Event: auditlog.EventAnchorFailed, Actor: "device",
			Reason: Sanitize(fmt.Sprintf("record %d could not be anchored in the TPM (retried while records are written): %v", target.seq, err))}, nil, nil)
	}
	return false
}

// writeCheckpoint has the identity key sign target, off the lock, then
// writes the checkpoint record if target is still recent and in the
// current segment (segment is l.segments when target was taken: a
// checkpoint must not name a record of a segment closed or moved aside
// since, which a walk of the new segment alone cannot check). It reports
// whether the checkpoint was written.
func (l *Log) writeCheckpoint(target mark, segment uint64) bool {
	cp, err := auditcheckpoint.Sign(l.o.Signer, rand.Reader, l.o.DeviceID, target.seq, target.hash)
	if err != nil {
		l.o.Log.Error("audit: checkpoint", "record", target.seq, "err", err)
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil || l.seq >= target.seq+auditlog.MaxCheckpointLag || l.segments != segment {
		return false
	}
	if _, err := l.appendLocked(Event{Event: auditlog.EventCheckpoint, Actor: "device"}, &auditlog.Covered{Seq: cp.Seq, Hash: cp.Hash, Sig: cp.Signature}, nil); err != nil {
		l.o.Log.Error("audit: checkpoint", "record", target.seq, "err", err)
		return false
	}
	l.checkpointDue = false
	l.sinceCheckpoint = 0
	l.checkpoint = &cp
	return true
}

// Flush waits until the anchorer has nothing left it may do now: the last
// record anchored (unless the batching makes it wait, or the TPM fails) and
// a due checkpoint written. Tests use it; it never waits for a refill.
func (l *Log) Flush() {
	done := make(chan struct{})
	select {
	case l.flush <- done:
		<-done
	case <-l.stopped:
	}
}

// identityKey is the signer's public key, if it is ECDSA.
func identityKey(s crypto.Signer) *ecdsa.PublicKey {
	k, _ := s.Public().(*ecdsa.PublicKey)
	return k
}

// Checkpoint returns the last checkpoint this log wrote since it opened
// (false: none yet, or no signer): what the console's `audit checkpoint`
// prints for a Central Station to verify offline.
func (l *Log) Checkpoint() (auditcheckpoint.Checkpoint, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.checkpoint == nil {
		return auditcheckpoint.Checkpoint{}, false
	}
	return *l.checkpoint, true
}
