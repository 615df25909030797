//go:build amd64 || arm64

package fbdev

import "unsafe"

// Compile-time layout checks for the 64-bit targets: a wrong size makes
// the array length non-zero (a type mismatch) or negative (an overflow), so
// `GOARCH=arm64 go build` fails.
var (
	_ [0]struct{} = [unsafe.Sizeof(varScreeninfo{}) - 160]struct{}{}
	_ [0]struct{} = [unsafe.Sizeof(fixScreeninfo{}) - 80]struct{}{}
	_ [0]struct{} = [unsafe.Offsetof(fixScreeninfo{}.LineLength) - 48]struct{}{}
)
