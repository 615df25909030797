// Package pairing is what the device shows while READY_TO_PAIR and how it
// checks what comes back: the pairing code, the QR content, the signed
// pairing token, the pairing session (expiry, token rotation, one-time use,
// wrong-code count) and the wrong-code lockout across sessions. It is pure:
// times are passed in (monotonic readings from clock.Clock), randomness and
// the signing key are injected, and nothing here starts a goroutine or a
// timer. The Central Station uses ParseQR, ParseCode and VerifyToken.
//
// # Pairing code
//
// Nine symbols shown as AAA-999-AAA: three letters, three digits, two
// letters and a check letter. Letters come from Letters (A-Z without the
// look-alikes I, O, Q, Z: 22 letters, value = index), digits are 0-9 (value
// = the digit). The first eight symbols are drawn uniformly from the random
// source by rejection sampling (≈32 bits). The check letter c makes
//
//	2·v1 + 3·v2 + 4·v3 + 5·v4 + 6·v5 + 7·v6 + 8·v7 + 9·v8 + 1·c ≡ 0 (mod 23)
//
// where vi is the value of symbol i. Since 23 is prime, every weight is
// non-zero and below 23, and two symbol values differ by at most 21:
//
//   - a single wrong symbol changes the sum by w·Δ with 0 < |Δ| ≤ 21, which
//     is never 0 mod 23: every single substitution is caught;
//   - swapping neighbours i, i+1 changes it by (wi − wi+1)·(vi+1 − vi);
//     neighbouring weights differ and so do the values, so every adjacent
//     transposition is caught (a letter swapped with a digit is caught by the
//     format already); so is every swap of symbols two apart.
//
// Check value 22 has no letter: NewCode draws again (1 draw in 23), so the
// check is exact and every code it makes parses. ParseCode accepts what a
// technician types (any case, with or without the dashes or spaces), names
// the position of a bad character, suggests the digit for a look-alike letter
// ("O is not used; did you mean 0?") and reports a failed check as a typo,
// so the tablet catches a typo before it costs one of the five attempts.
//
// # QR content
//
// The spec's JSON object (DOC-PROC-001 section 3) with its field names in its
// order, compact, all strings:
//
//	{"deviceId":"ZM-001","deviceSerial":"SN-2024-001234","ipAddress":"192.168.1.100",
//	 "pairingCode":"ABC-123-ABC","pairingToken":"<98 chars>",
//	 "expiresAt":"2024-11-25T14:30:00Z","firmwareVersion":"1.2.3"}
//
// expiresAt is RFC 3339 UTC with whole seconds (TimeLayout); it is for humans
// and for a Central Station whose clock it trusts; the device keeps expiry on
// its monotonic clock. Field limits are in Validate; the whole object a
// session shows is at most MaxQRBytes (331) so that it fits QR version 13 at
// error correction M (69 modules, 231 px at 3 px per module with a 4-module
// quiet zone). With the spec's example field lengths the object is 286
// bytes: version 12 (65 modules, 219 px with the quiet zone), as DESIGN.md
// asks. That needs the 9-byte nonce below (the design says 12; with 12 the
// example is 290 bytes, version 13); longer fields still use version 13.
//
// # Pairing token
//
// The token proves the QR was made by this device, recently:
//
//	pairingToken = base64url_nopad( nonce[9] || r[32] || s[32] )     (98 characters)
//
// where nonce is fresh random bytes per rotation and (r, s) is an ECDSA
// P-256 signature, r and s big-endian and left-padded with zeros to 32 bytes,
// by the device identity key (DevID, in the TPM) over
//
//	digest = SHA-256( item("zmonitor-pairing-token-v1") ||
//	                  item(deviceId) || item(deviceSerial) || item(ipAddress) ||
//	                  item(pairingCode) || item(expiresAt) || item(firmwareVersion) ||
//	                  item(nonce) )
//	item(x) = uint16_big_endian(len(x)) || x
//
// with each field exactly as it appears in the JSON (its UTF-8 bytes after
// JSON decoding). The length prefixes make the encoding unambiguous and the
// label separates it from anything else the key signs. A verifier decodes
// the token (strict base64url, no padding, exactly 73 bytes), recomputes the
// digest from the other six fields and the nonce, and checks the signature
// with the DevID public key from its inventory (ECDSA P-256 verification,
// which refuses r or s outside [1, n−1]; low-S is not required). VerifyToken
// does exactly this. (The spec says "HMAC-signed with the device's private
// key"; a public-key signature lets the Central Station verify without a
// shared secret.)
//
// # Session
//
// A Session lasts DefaultLifetime (10 min) from its start and rotates its
// token every DefaultRotation (30 s); the engine owns the timers and calls
// Rotate. CheckToken accepts the current token and the one of the previous
// rotation only, so a photo of an older QR is worthless. CheckCode counts
// wrong codes; the fifth closes the session (failure.TooManyAttempts).
// Consume makes the session single-use. Expiry is inclusive: at exactly
// start + lifetime the session is expired.
//
// # Lockout
//
// A wrong pairing code fails the provisioning attempt (PAIRING_RECEIVED →
// PROVISIONING_FAILED) and the technician may retry with a new session.
// Lockout counts those failures across sessions: after MaxWrongCodes (5)
// wrong codes within a window (default: the session lifetime, 10 min, on the
// monotonic clock) the device refuses to start a new session until the window
// has passed since the oldest of them. A successful provisioning resets it.
package pairing
