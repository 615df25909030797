// Package button drives the "Enable Provisioning" push button of the Z Monitor.
//
// The button is a gpio.PinIn, in production a line of the Linux GPIO
// character device (periph.io/x/host/v3/gpioioctl) that the board profile
// looks up (board.OpenButton). The driver never looks hardware up itself:
// it receives the pin.
//
// Edges are waited for with WaitForEdge (no polling of the level) and
// debounced by "accept the first edge to a new level, then ignore further
// edges for Opts.Debounce". A pulse shorter than the debounce interval
// therefore still registers as one Press. QEMU's system_powerdown holds
// PL061 line 3 up for 100 ms (hw/gpio/gpio_key.c); a second
// system_powerdown within those 100 ms makes no edge at all, so it cannot
// be seen by any driver (qemu_test.go models this; docs/qemu.md).
//
// Run emits Press when the button goes down and, if it is still held
// Opts.LongPress later, one LongPress. A LongPress is always preceded by the
// Press of the same push.
//
// The kernel's GPIOLine.WaitForEdge does not say which edge happened and a
// level read after the event may already be stale (a 10 ms pulse is over by
// the time the process runs), so the driver tracks the level by toggling it
// on every edge, starting from the level read when the pin was configured.
// When the line has been quiet for two consecutive waits and its level still
// disagrees with the tracked one (the kernel dropped events), the tracked
// level is resynchronised from the pin.
package button
