// Package engine runs the provisioning workflow of DOC-PROC-001: one
// goroutine owns the state, receives events (button, console, provisioning
// endpoint, timers, results of background work) and does the side effects of
// entering each state in one place (enter). The decision of which state
// comes next is state.Next, a pure function.
//
// Slow work (payload decryption through the TPM, staging, the connection
// test) runs on worker goroutines that post their result back to the owner,
// so the screen's countdown and status requests are never held up.
package engine
