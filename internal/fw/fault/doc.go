// Package fault names the device faults: the start-up failures after which
// the firmware cannot provision (TPM keys, audit log, settings, trust
// anchor, engine, console). Each has a stable code, such as F-TPM-01, that
// the panel shows on its device-fault screen and the serial console logs
// with the cause, and that docs/screens.md lists with what to check, so a
// technician can look it up and quote it.
package fault
