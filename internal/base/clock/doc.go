// Package clock gives the firmware its sense of time: a Clock for timers and
// monotonic durations (injected so tests never sleep), and Wall, which knows
// whether the wall-clock time can be trusted.
//
// Expiry (pairing session, token rotation) is always measured on the
// monotonic clock. Wall time is only used where a human or a certificate needs
// it, and is trusted only when it is not below the firmware's build time or
// was adopted from a verified, nonce-bound payload timestamp.
//
// Wall also keeps the last known good time (Observe): times the device
// learnt from authenticated sources, persisted by the firmware across
// boots. Now never returns less than it (plus the monotonic time since),
// so the time a device renews its certificate by never goes backwards
// (docs/lifecycle.md, "Time").
package clock
