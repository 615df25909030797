// Package devicewire is the device's provisioning protocol on the wire: the
// hello exchange (request, the device's signed answer and its
// verification), the configuration push's progress lines and status, and
// the refusal body. The device's endpoint (internal/fw/endpoint) and the
// Central Station's client (internal/central/deviceclient) both speak it
// from here. docs/protocol.md describes it with test vectors.
package devicewire
