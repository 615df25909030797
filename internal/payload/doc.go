// Package payload is the provisioning configuration the Central Station
// pushes to a device (DOC-PROC-001 section 4, DESIGN.md section 5): its
// fields, the Central Station's signature over its RFC 8785 canonical form,
// the HPKE envelope that encrypts it to the device's TPM-held payload key,
// and the device-side verification in the design's order, each check with its
// own failure code.
//
// The wire format, with test vectors, is in docs/protocol.md.
package payload
