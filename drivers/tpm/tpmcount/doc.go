// Package tpmcount is a transport.TPM decorator that counts the commands
// sent to a TPM by command code and adds up the time each kind takes. It
// measures how much TPM work a pairing costs (see the tpm package's
// benchmark) and can back a diagnostics counter on the device.
package tpmcount
