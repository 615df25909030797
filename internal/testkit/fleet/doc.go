// Package fleet is a Central Station and software monitors in one process
// for the lifecycle's tests and benchmarks: the device CA, the store
// (SQLite or PostgreSQL), the EST server and the stand-in monitoring server
// on TLS listeners on 127.0.0.1, and devices whose keys are softkeys and
// whose provisioning is committed in a real settings file, renewed by the
// firmware's own renew package.
package fleet
