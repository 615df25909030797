// Package job is the contract between the Central Station's tablet API
// (internal/central/server), which validates a pairing request, and the part
// that provisions the device (internal/central/pusher): connect, hello,
// issue the client certificate, sign and seal the payload, push, follow the
// device to its final state.
//
// It holds only types, so that either side can be built and tested without
// the other.
package job
