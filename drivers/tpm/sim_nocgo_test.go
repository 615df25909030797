//go:build !cgo

package tpm

// simBackends is empty without cgo: the simulator is C code.
func simBackends() []backendKind { return nil }
