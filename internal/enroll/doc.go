// Package enroll is the device's enrollment record: what the manufacturing
// line exports for the Central Station's inventory on first boot (device ID,
// serial, the public halves of the TPM identity and payload keys, firmware
// version). JSON, camelCase, keys as standard base64 of DER
// SubjectPublicKeyInfo.
package enroll
