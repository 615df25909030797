// Package failure names every way a provisioning attempt can fail: a stable
// code for logs and the protocol, the spec's error title, the text the
// technician sees and the action the spec's error table asks of them.
package failure
