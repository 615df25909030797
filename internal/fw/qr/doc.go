// Package qr turns the pairing QR text into a module matrix at error
// correction level M. It only encodes: content limits are the pairing
// package's job, but the matrix reports its Version so callers (the screen
// layout) can check that it fits.
package qr
