// Package testpki makes small certificate hierarchies for tests: a
// provisioning root with a signer, a device CA with client certificates, a
// monitoring server certificate. Test code only; nothing here protects keys.
package testpki
