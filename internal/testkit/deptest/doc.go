// Package deptest pins what a package may link, in the style of tailscale's
// tstest/deptest: it lists the dependencies `go list -deps` gives for a
// target platform and checks them against rules, each with the reason it
// exists, so a failing check says why the import is refused and which
// package brought it in.
//
// cmd/zmonitor's test pins the firmware (/init); this package's own test
// pins the sides of internal/ (firmware, protocol, host) against each other.
package deptest
