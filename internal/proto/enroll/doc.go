// Package enroll is the device's enrollment record: what the manufacturing
// line exports on first boot and the Central Station imports into its
// inventory (deviceId, deviceSerial, the SubjectPublicKeyInfo of the
// identity and payload keys, firmware version), as JSON.
//
// The firmware builds a record from any keys.Store with New; the Central
// Station reads one with Parse, which is strict: unknown or duplicate
// fields, trailing data, missing fields and keys that are not P-256 are
// errors.
package enroll
