// Package endpoint is the device's provisioning endpoint. Its wire protocol
// (messages, limits, the signed hello) is internal/proto/devicewire, which
// the Central Station's client (internal/central/deviceclient) speaks too.
//
// The server listens only while the device is READY_TO_PAIR (and while a
// push it accepted is in flight). It speaks TLS 1.3 only, presents a
// certificate self-signed by the device identity key (the Central Station
// pins that key from its inventory), and requires a client certificate that
// chains to the provisioning trust anchor.
//
// Requests (all JSON, all size-limited):
//
//	POST /v1/hello   {"pairingToken": "..."}      → signed devicewire.HelloResponse
//	POST /v1/config  HPKE envelope                 → progress, JSON Lines, to the final state
//	GET  /v1/status                                → devicewire.Status
//
// A refusal is an HTTP error status with a devicewire.ErrorBody naming a failure code.
// See docs/protocol.md. Every refused connection, handshake and request is
// reported through Opts.OnRefused, which must not block.
//
// Limits (Opts): MaxConns connections at once and MaxConnsPerHost from one
// address, the rest closed at once and reported; MaxHandshakes TLS
// handshakes past the ClientHello at once, since each costs a signature by
// the identity key (a TPM operation), the rest waiting for a slot within
// the handshake timeout.
//
// Close never waits for a connection: it closes the listener, cancels every
// connection's context, cuts the connections that have not proven a client
// certificate and gives the others Opts.Grace to finish (a config push
// streaming its final state). Wait waits for the last of them.
//
// The server speaks HTTP/1.1 through internal/fw/sys/http1, one request per
// connection ("Connection: close"), Content-Length request bodies only; a
// config push answers with a close-delimited stream. It does not link
// net/http, which would be over a quarter of the firmware binary.
package endpoint
