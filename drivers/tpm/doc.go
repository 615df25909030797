// Package tpm keeps the Z Monitor's device keys in a TPM 2.0 and offers them
// as a keys.Store: the device identity (DevID) as a crypto.Signer, the
// payload key as an ecdh.KeyExchanger for crypto/hpke, and client TLS keys
// that are created (or imported) during pairing and made persistent only when
// the provisioning commits.
//
// It speaks to the TPM with github.com/google/go-tpm's tpm2 direct API and is
// pure Go: Open picks /dev/tpmrm0 (linuxtpm), a swtpm unix socket
// ("unix:/path") or a swtpm TCP server ("tcp:127.0.0.1:2321").
//
// Private key material never leaves the TPM: every key is created with
// fixedTPM|fixedParent|sensitiveDataOrigin (an imported client key is
// wrapped to the SRK on the host and unwrapped inside the TPM), and every
// transient handle the package loads is flushed before the operation returns.
//
// See docs/tpm.md for handles, templates, lifecycle and error handling.
package tpm
