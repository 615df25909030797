// Package estclient is the device's EST client (RFC 7030): simple
// re-enrollment (§4.2.2) of its client certificate, authenticated by the
// certificate it holds, and the CA certificates request (§4.1), over TLS
// 1.3 to an EST server verified against the provisioning's CA certificate
// only. The bodies are internal/proto/est's; HTTP/1.1 is
// internal/fw/sys/http1's (one request per connection), not net/http.
//
// Every answer's Date header is returned: a time the server vouched for
// over a verified connection, which the device learns the time from.
//
// An EST server refuses with an HTTP status; the Central Station adds an
// RFC 9457 problem whose type says why (revoked, decommissioned): Error
// carries both.
package estclient
