// Package state is the provisioning state machine of DOC-PROC-001 section 5:
// the states, the events that move between them and a pure Next function.
// It has no side effects; the engine owns the current state and does the
// work of entering a state.
package state
