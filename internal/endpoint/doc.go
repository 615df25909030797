// Package endpoint is the device's provisioning endpoint and the client the
// Central Station uses to talk to it: one definition of the wire protocol,
// both sides.
//
// The server listens only while the device is READY_TO_PAIR (and while a
// push it accepted is in flight). It speaks TLS 1.3 only, presents a
// certificate self-signed by the device identity key (the Central Station
// pins that key from its inventory), and requires a client certificate that
// chains to the provisioning trust anchor.
//
// Requests (all JSON, all size-limited):
//
//	POST /v1/hello   {"pairingToken": "..."}      → signed HelloResponse
//	POST /v1/config  HPKE envelope                 → progress, JSON Lines, to the final state
//	GET  /v1/status                                → Status
//
// A refusal is an HTTP error status with an ErrorBody naming a failure code.
// See docs/protocol.md.
package endpoint
