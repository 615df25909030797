// Package kernel finds, builds and identifies the board's Linux kernel Image.
//
// The build itself is scripts/build-kernel.sh (allnoconfig + the board's
// kernel.fragment, cross-compiled from Debian's linux-source-6.1, cached
// outside the clone under $ZM_CACHE/kernel/<key>/Image). This package runs
// that script for Go callers (the image tool, the QEMU board, tests) and reads
// the version banner out of an Image.
package kernel
