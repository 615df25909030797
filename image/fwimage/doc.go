// Package fwimage assembles a firmware image directory from its inputs: it
// checks the kernel Image and the static /init, builds the initramfs
// (package initramfs), copies the kernel, and writes manifest.json (package
// manifest). Same inputs give byte-identical files.
package fwimage
