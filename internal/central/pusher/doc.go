// Package pusher is the Central Station's side of a pairing: it connects to
// the device's provisioning endpoint (pinned to the identity key from the
// inventory, presenting the provisioning signer's certificate), runs hello,
// issues the client certificate from the device's CSR, builds the
// configuration payload, signs it, seals it to the device's payload key with
// the session nonce, pushes it and follows the device to its final state.
//
// It implements job.Provisioner for the Central Station's tablet API, and is
// what the host integration tests and the demo use as the Central Station.
package pusher
