// Package console is the serial diagnostics console: golang.org/x/term's
// line editor (history, cursor keys, Ctrl-A/E/U/W, Ctrl-L, Tab completion
// of command names) over an io.ReadWriter (the UART, or a pty in tests) and
// the service engineer's commands (help, status, qr, audit, config, keys, enroll, net, version,
// provision, reboot, factory-reset).
//
// The console talks to the device only through the small Device interface,
// so it can be tested with a hand-written fake. It never prints key
// material: settings whose name or value looks secret are redacted, and
// every line written passes a filter that blanks PEM private keys.
//
// See docs/console.md for the commands and how to connect with picocom or
// screen.
package console
