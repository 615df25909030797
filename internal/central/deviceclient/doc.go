// Package deviceclient is the Central Station's side of the device's
// provisioning endpoint (internal/endpoint): hello, config push with its
// progress stream, status. It pins the device's TLS certificate to the
// identity key from the inventory and presents the provisioning signer's
// certificate.
//
// It uses net/http and runs on the Central Station (and in tests); the
// firmware itself never links it. Its tests are internal/endpoint's
// (package endpoint_test), which run it against the real server: pinning,
// refusals with their codes, the progress stream. The wire protocol — message types,
// limits, signatures — is defined once, in internal/endpoint.
package deviceclient
