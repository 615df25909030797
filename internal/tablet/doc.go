// Package tablet is the technician's side of DOC-PROC-001 step 3: it reads
// the pairing QR code from a camera picture or a screenshot (ScanImage), or
// checks a typed pairing code, asks the Central Station's tablet API to
// provision the device (Client.Pair) and follows the attempt to its end,
// reporting each state the device goes through. Failures are described with
// the spec's error table (failure.Code's title and user action) so the
// technician knows what to do. The pairing code and the pairing token are
// never logged or printed: they are secrets while the device's session
// lasts. cmd/zm-pair is the command-line front end.
package tablet
