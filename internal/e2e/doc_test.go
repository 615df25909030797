// Package e2e holds the end-to-end tests of the real firmware image on the
// QEMU board (only _test.go files: the harness they drive is
// internal/testkit/harness, which cmd/zm-demo uses too).
package e2e
