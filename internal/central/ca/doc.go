// Package ca is the Central Station's device certificate authority: it turns
// a device's certificate signing request (made by a key inside the device's
// TPM) into a client certificate for the monitoring server's mTLS.
package ca
