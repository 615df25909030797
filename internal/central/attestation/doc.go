// Package attestation decides whether the Central Station trusts the
// firmware a device booted, before it builds the device's configuration
// payload: the device's TPM2_Quote of PCR 4 and 7 must be signed by the
// attestation key in its enrollment record, over the nonce the Central
// Station sent for this hello; the firmware's event log must replay to the
// quoted PCRs (github.com/google/go-attestation's parser); and the image
// the firmware measured into PCR 4 must be a released firmware on the
// allow-list (`zm-central firmware allow MANIFEST`), with the PCR values
// its manifest expects. A device without measured boot (the direct-kernel
// development board) passes only when the Central Station runs with
// --allow-unmeasured-dev-firmware. See docs/secure-boot.md, "Attestation".
package attestation
