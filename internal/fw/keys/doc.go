// Package keys defines the device's key store as the provisioning logic sees
// it: an identity signer, a payload key-agreement key and client TLS keys,
// none of which exposes private key material.
//
// The real store is the TPM (drivers/tpm); softkeys holds keys in memory for
// development hosts and tests.
package keys
