// Package device wires the firmware together once the hardware is open: the
// audit log and settings on the data directory, the screen, the provisioning
// engine, the button and the diagnostics console. cmd/zmonitor opens the
// hardware (board profile lookups) and calls Run; tests call Run with fakes.
package device
