// Package renew renews a provisioned device's client certificate (DESIGN.md
// section 10, docs/lifecycle.md): when to (Policy: at two thirds of the
// certificate's validity, retries with backoff and jitter, the warning
// when expiry is near and renewal keeps failing) and how (Renew: a new key
// in the TPM, EST simple re-enrollment authenticated by the current
// certificate, a connection test with the new pair, then the switch).
//
// # The switch and power cuts
//
// The device has two client key slots (keys.Slot); the settings name the
// active one. Renew makes the new key in the other slot's place, uses it
// only for the connection test, and then, in this order: commits the key
// to the other slot (the active one untouched), commits the settings
// (certificate and key reference, one bbolt transaction, only if the
// committed certificate is still the one renewed), and evicts the old key.
// A power cut before the settings commit leaves the old pair in force and
// a leftover key in the other slot; after it, the new pair and a leftover
// old key. Either way the device works, and the boot evicts the leftover
// (ResolveSlots). Never neither.
package renew
