// Package flood is load on the device's provisioning port for tests: workers
// that open TLS connections one after the other with a client certificate
// (typically a self-signed one, as anyone on the ward network can make),
// read until the device refuses them, and count what they did.
//
// The engine's unit tests aim it at the real endpoint on 127.0.0.1; the
// QEMU end-to-end tests at the board's forwarded port.
package flood
