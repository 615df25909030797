// Package server is the Central Station's HTTPS API for technicians'
// tablets.
//
//	POST /v1/pairings        one device: a scanned QR, or deviceId + address + typed pairing code
//	GET  /v1/pairings/{id}   progress and result of one attempt
//	POST /v1/batches         many devices at once (bounded concurrency)
//	GET  /v1/batches/{id}    per-device progress and results
//
// The requests and answers are internal/proto/tabletwire's types, which the
// tablet client (internal/tablet) uses too.
//
// Every request carries "Authorization: Bearer <technician token>"; the
// token's hash is compared in constant time and revoked technicians are
// refused.
//
// A pairing request is validated synchronously, each check with its own
// refusal code (Refusal) that the tablet shows with a user action: the
// device is in the inventory and not revoked; the QR parses strictly; the
// pairing token's signature verifies with the inventory's identity key; its
// expiresAt has not passed (only when the device clock is trusted, see
// Config.TrustDeviceClock); the token nonce and the pairing code are claimed
// once in the database (two replicas or two racing requests cannot both
// win); on the manual path the typed code is syntax-checked first, so a typo
// costs the device no attempt. The validated job is then handed to a
// job.Provisioner, asynchronously; progress and outcome are written to the
// store, so any replica can answer GET.
//
// Every client certificate the Provisioner issues is recorded through the
// job's Issued hook before it leaves the Central Station (a certificate
// that cannot be recorded is not delivered), and settled when the pairing
// ends: in use when the device is PROVISIONED, otherwise revoked with the
// reason the Provisioner's Outcome.Fate gives (not delivered, device
// refused, connection test failed).
//
// At most Config.MaxInFlight provisionings run at once: a single pairing
// takes its in-flight slot when it is admitted (Busy when none is free,
// before anything is claimed), a batch's workers take one as each job
// starts; the slots type is the only code that takes or gives one back.
//
// Nothing here logs or stores a pairing code or token in clear.
package server
