// Package engine runs the provisioning workflow of DOC-PROC-001: one
// goroutine owns the state, receives events (button, console, provisioning
// endpoint, timers, results of background work) and does the side effects of
// entering each state in one place (enter). The decision of which state
// comes next is state.Next, a pure function.
//
// Slow work (payload decryption through the TPM, staging, the connection
// test) runs on worker goroutines that post their result back to the owner,
// so the screen's countdown and status requests are never held up. The
// owner never waits on a connection of the provisioning endpoint (closing
// the port returns at once), and a connection waits for the owner only as
// long as its own context lasts (doCtx); its refusals go through a bounded
// queue that never blocks and are recorded aggregated (refusals.go).
//
// Files by job:
//
//	engine.go      types, Options, Deps, New, the Run loop, boot and shutdown
//	transition.go  handle (state.Next, audit) and enter (every side effect)
//	session.go     the pairing session, its token rotation and timers
//	inputs.go      the button, console provisioning, factory reset
//	endpoint.go    the provisioning endpoint's adapter: hello, config, progress
//	refusals.go    the endpoint's refusals, counted into audit records
//	workers.go     validation, apply, connection test, commit
//	status.go      Status, publish, the screen's view
package engine
