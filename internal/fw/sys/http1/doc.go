// Package http1 is the small piece of HTTP/1.1 the firmware speaks on the
// wire: reading one request (origin-form target, headers, a Content-Length
// body) and writing one response, and reading the head of a server's
// response for the connection test.
//
// It exists because net/http is about 2.8 MB of the static arm64 binary
// (measured: a TLS program grows from 3.4 MB to 6.2 MB when it serves and
// fetches with net/http) and the device needs three routes, one request per
// connection. Less code is also less to attack on a port that any host on
// the ward network can reach: no HTTP/2, no chunked request bodies, no
// keep-alive, no trailers, no upgrades.
//
// Every request is answered with "Connection: close"; a response whose
// length is not known (a stream) ends when the connection does, which every
// HTTP/1.1 client understands. The Central Station's side keeps using
// net/http (see internal/deviceclient).
package http1
