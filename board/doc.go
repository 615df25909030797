// Package board describes the boards the firmware runs on and opens their
// hardware.
//
// A Profile names every part the firmware touches: the provisioning button's
// GPIO line, the display (a Linux framebuffer or an SPI panel with its DC and
// RST lines), the TPM, the console UART, the data partition, the network
// interface, the provisioning port, whether the console may start
// provisioning, and the pairing timings. Profiles are plain values: Lookup
// returns a fresh copy of a built-in profile, Parse reads one from JSON
// (the image embeds it at /etc/zmonitor/board.json), and Validate checks
// every field with a specific error.
//
// The Open* functions are the only place where the firmware looks hardware
// up by name (periph's host.Init and spireg, the GPIO character device, the
// framebuffer, the UART); the drivers in drivers/ receive what these
// functions found. See docs/boards.md for each board's wiring.
package board
