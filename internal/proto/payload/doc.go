// Package payload is the provisioning configuration the Central Station
// pushes to a device (DOC-PROC-001 section 4, DESIGN.md section 5): its
// members, the provisioning signer's signature over its RFC 8785 canonical
// form, the HPKE envelope that encrypts it to the device's TPM-held payload
// key, and the device-side verification in the design's order, each check
// with its own failure code.
//
// Device side: Verify(envelope, payloadKey, Expect{...}) returns a *Verified
// (the Config plus the parsed certificates and server URL) or an error whose
// failure.Code names the first check that failed.
//
// Central Station side: fill a Config (EncodeCert, EncodeChain, EncodeNonce,
// FormatTimestamp give each member its wire form), then SignAndSeal; or
// Sign, Marshal and Seal separately.
//
// Choices worth knowing:
//   - The signature covers the canonical form of the bytes as received, and
//     Parse refuses a payload whose decoded Config does not re-encode to the
//     same canonical form, so what is signed and what the device acts on
//     cannot differ (duplicate members, case-folded names, lone surrogates,
//     "1.0" for an integer are all refused).
//   - serverUrl is checked by Parse (PayloadMalformed), before the signature:
//     it is a syntax rule, and it tells an unauthenticated sender nothing.
//   - With an untrusted wall clock the signer chain is checked as of the
//     payload's own timestamp, the timestamp is adopted only after the
//     pairing code matched, and the chain is checked again at the adopted
//     time.
//   - SignerEKU is provisional until the manufacturer has a Private
//     Enterprise Number.
//
// The wire format, with test vectors, is in docs/protocol.md.
package payload
