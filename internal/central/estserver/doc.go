// Package estserver is the Central Station's EST server (RFC 7030) for
// device certificate renewal: simple re-enrollment (§4.2.2) authenticated
// by the device's current client certificate, and the CA certificates
// (§4.1). It issues from the device CA, records every certificate before
// it leaves (like a pairing's), and audits.
//
// It serves on its own device-facing mutual-TLS listener (zm-central serve
// --est-listen; docs/central-station.md says why not on the tablet API's
// or the stand-in monitoring server's).
//
// Refusals are RFC 9457 problems (application/problem+json) whose type
// tells the device why (ProblemRevoked, ProblemDeviceRevoked), so that it
// can show it rather than "connection failed".
package estserver
