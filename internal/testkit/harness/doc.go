// Package harness drives the real firmware image on the QEMU board the way a
// technician and a Central Station would: it cross-compiles cmd/zmonitor,
// packs it with the board profile and a provisioning trust anchor into an
// initramfs, boots it with swtpm, talks to the serial console, presses the
// button through QMP, reads the QR off a screendump and pairs over QEMU's
// user-mode network (host side on 127.0.0.1 only).
//
// internal/e2e (the image's end-to-end tests) and cmd/zm-demo use it.
package harness
