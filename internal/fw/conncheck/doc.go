// Package conncheck is the connection test of TESTING_CONNECTION (DESIGN.md
// section 6): with the staged configuration, connect to the spec's serverUrl
// over TLS 1.3 only, presenting the device's client certificate (its key in
// the TPM) and trusting only the configuration's caCertificate (never the
// system roots), then GET the server's health path and expect a 2xx status.
//
// A failure says why, as a Reason (ReasonOf): the name does not resolve, the
// connection is refused, the network is unreachable, no answer in time, the
// server does not speak TLS 1.3, its certificate is not trusted or names
// another host, it rejected the device's certificate, the device key failed,
// the health check returned a non-2xx status, or something else went wrong.
// The error is a failure.Error with code failure.ConnectionFailed (the spec's
// "Connection failed: check network, retry").
//
// With TLS 1.3 the client finishes its handshake before the server has
// judged the client certificate, so a rejection arrives as an alert on the
// first read; Run reads the response and reports it as ClientCertRejected.
//
// Attempts are bounded (default 3, each at most 5 s) with doubling backoff
// (1 s, 2 s, ...), and only transient failures are retried: refused,
// unreachable, timeout, a temporary DNS failure and a 5xx status. The dialer
// and the backoff wait are injectable, so tests neither sleep nor need a
// network beyond 127.0.0.1.
package conncheck
