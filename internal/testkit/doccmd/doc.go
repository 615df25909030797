// Package doccmd holds only a test: every command README.md and docs/*.md
// show in a ```sh block is either run, as written, against freshly built
// programs (zmonitor, zm-central, zm-pair, zm-image, zm-board), or listed
// with the reason it is not run here (it boots the QEMU board, takes
// minutes, or needs hardware) and then checked as far as is cheap (a make
// target exists, a go test package exists). A command the table does not
// know fails the test, and so does a fenced block without a language: a
// command cannot hide in an unmarked block.
package doccmd
