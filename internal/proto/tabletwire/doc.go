// Package tabletwire is the tablet API on the wire: the Central Station's
// HTTPS API that technicians' tablets call to provision devices
// (docs/central-station.md, "Tablet API"). The requests, the answers, the
// refusal body and the views of a pairing's progress and of a batch are
// defined here once; the server (internal/central/server) writes and reads
// them, and the client (internal/tablet, cmd/zm-pair) reads and writes the
// same types, so the two cannot drift apart. internal/proto/devicewire is
// the same for the device's protocol.
//
// The package holds no logic beyond the encoding: DecodeRequest is strict
// (the server refuses unknown fields and trailing data), DecodeAnswer is
// tolerant of members it does not know (a newer Central Station may say
// more) but bounded, and PairingView.Check refuses a view whose state and
// finality disagree. It imports only the standard library and is never
// linked into the firmware.
package tabletwire
