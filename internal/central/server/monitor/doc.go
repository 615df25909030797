// Package monitor is a stand-in for the hospital's monitoring server, so
// that demos and tests have a real server for the device's connection test
// (TESTING_CONNECTION): TLS 1.3 only, a client certificate issued by the
// device CA required, and GET /health answering 200 "ok". It logs the
// client certificate's common name (the device ID) and counts the requests
// per device.
package monitor
