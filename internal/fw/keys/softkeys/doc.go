// Package softkeys is an in-memory keys.Store for development hosts and
// tests. Its keys are ordinary Go keys: it offers none of the TPM's
// protection and must never back a shipped device.
package softkeys
