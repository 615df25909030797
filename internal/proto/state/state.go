package state

import (
	"errors"
	"fmt"
)

// State is a provisioning state. Values are stable: they are stored and
// audited.
type State int

// The spec's states.
const (
	Unprovisioned      State = 1
	ReadyToPair        State = 2
	PairingReceived    State = 3
	ApplyingConfig     State = 4
	TestingConnection  State = 5
	Provisioned        State = 6
	ProvisioningFailed State = 7
	// Decommissioned: an operator decommissioned the device and it wiped
	// its provisioning (docs/lifecycle.md). Like UNPROVISIONED, a press
	// pairs it again.
	Decommissioned State = 8
)

// All lists every state in order.
var All = []State{Unprovisioned, ReadyToPair, PairingReceived, ApplyingConfig, TestingConnection, Provisioned, ProvisioningFailed, Decommissioned}

var stateNames = map[State]string{
	Unprovisioned:      "UNPROVISIONED",
	ReadyToPair:        "READY_TO_PAIR",
	PairingReceived:    "PAIRING_RECEIVED",
	ApplyingConfig:     "APPLYING_CONFIG",
	TestingConnection:  "TESTING_CONNECTION",
	Provisioned:        "PROVISIONED",
	ProvisioningFailed: "PROVISIONING_FAILED",
	Decommissioned:     "DECOMMISSIONED",
}

// String returns the spec's name, e.g. "READY_TO_PAIR".
func (s State) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("STATE(%d)", int(s))
}

// Parse returns the state named s (the spec's spelling).
func Parse(s string) (State, error) {
	for st, n := range stateNames {
		if n == s {
			return st, nil
		}
	}
	return 0, fmt.Errorf("state: unknown state %q", s)
}

// Busy reports whether a pushed configuration is being processed.
func (s State) Busy() bool {
	return s == PairingReceived || s == ApplyingConfig || s == TestingConnection
}

// Event is something that happened to the device.
type Event int

// Events.
const (
	ButtonPressed       Event = 1  // the physical "Enable Provisioning" button
	ConsoleProvision    Event = 2  // `provision` on the diagnostics console
	SessionExpired      Event = 3  // the pairing session's time ran out
	ConfigReceived      Event = 4  // the provisioning endpoint accepted a pushed envelope
	ValidationPassed    Event = 5  // the payload passed every check
	ValidationFailed    Event = 6  // a payload check failed
	ApplySucceeded      Event = 7  // the configuration was staged
	ApplyFailed         Event = 8  // staging failed
	ConnectionSucceeded Event = 9  // the connection test passed and the stage committed
	ConnectionFailed    Event = 10 // the connection test (or the commit) failed
	FactoryReset        Event = 11 // confirmed factory reset
	SessionStartFailed  Event = 12 // entering READY_TO_PAIR could not open the session or the port
	FactoryResetFailed  Event = 13 // entering UNPROVISIONED by a factory reset could not erase the settings
	CentralRefused      Event = 14 // the Central Station refused the device after its hello (devicewire.Refusal)
	Decommission        Event = 15 // the Central Station answered that an operator decommissioned the device
	DecommissionFailed  Event = 16 // entering DECOMMISSIONED could not erase the settings
	Reprovision         Event = 17 // confirmed re-provisioning of a provisioned device (console + button)
	FallBack            Event = 18 // a re-provisioning failed: the previous provisioning is kept
)

// AllEvents lists every event in order.
var AllEvents = []Event{ButtonPressed, ConsoleProvision, SessionExpired, ConfigReceived, ValidationPassed, ValidationFailed, ApplySucceeded, ApplyFailed, ConnectionSucceeded, ConnectionFailed, FactoryReset, SessionStartFailed, FactoryResetFailed, CentralRefused, Decommission, DecommissionFailed, Reprovision, FallBack}

var eventNames = map[Event]string{
	ButtonPressed:       "BUTTON_PRESSED",
	ConsoleProvision:    "CONSOLE_PROVISION",
	SessionExpired:      "SESSION_EXPIRED",
	ConfigReceived:      "CONFIG_RECEIVED",
	ValidationPassed:    "VALIDATION_PASSED",
	ValidationFailed:    "VALIDATION_FAILED",
	ApplySucceeded:      "APPLY_SUCCEEDED",
	ApplyFailed:         "APPLY_FAILED",
	ConnectionSucceeded: "CONNECTION_SUCCEEDED",
	ConnectionFailed:    "CONNECTION_FAILED",
	FactoryReset:        "FACTORY_RESET",
	SessionStartFailed:  "SESSION_START_FAILED",
	FactoryResetFailed:  "FACTORY_RESET_FAILED",
	CentralRefused:      "CENTRAL_REFUSED",
	Decommission:        "DECOMMISSION",
	DecommissionFailed:  "DECOMMISSION_FAILED",
	Reprovision:         "REPROVISION",
	FallBack:            "FALL_BACK",
}

func (e Event) String() string {
	if n, ok := eventNames[e]; ok {
		return n
	}
	return fmt.Sprintf("EVENT(%d)", int(e))
}

// Facts are the conditions, outside the state itself, that a transition
// depends on.
type Facts struct {
	// LockedOut is set while too many wrong pairing codes were entered
	// recently: entering READY_TO_PAIR is refused.
	LockedOut bool
	// ConsoleMayProvision is the board profile's permission for the console
	// to start provisioning.
	ConsoleMayProvision bool
	// Fallback is set while a re-provisioning runs: the previous
	// provisioning is still committed, and a pairing that ends without a
	// new one returns to it (PROVISIONED) instead of UNPROVISIONED.
	Fallback bool
}

// Errors returned by Next. Both mean the event is refused and the state
// stays as it is.
var (
	ErrInvalid    = errors.New("state: event not valid in this state")
	ErrLockedOut  = errors.New("state: provisioning locked after too many wrong pairing codes")
	ErrNotAllowed = errors.New("state: console provisioning is not allowed on this board")
)

// Next returns the state that event e leads to from s. An event that is not
// valid in s returns s and an error wrapping ErrInvalid (or a more specific
// refusal); Next never panics.
func Next(s State, e Event, f Facts) (State, error) {
	switch {
	case (s == Unprovisioned || s == Decommissioned) && (e == ButtonPressed || e == ConsoleProvision):
		if e == ConsoleProvision && !f.ConsoleMayProvision {
			return s, fmt.Errorf("%s in %s: %w", e, s, ErrNotAllowed)
		}
		if f.LockedOut {
			return s, fmt.Errorf("%s in %s: %w", e, s, ErrLockedOut)
		}
		return ReadyToPair, nil
	case s == ReadyToPair && (e == SessionExpired || e == SessionStartFailed):
		if f.Fallback {
			return Provisioned, nil
		}
		return Unprovisioned, nil
	case s == ReadyToPair && e == ConfigReceived:
		return PairingReceived, nil
	case s == ReadyToPair && e == CentralRefused:
		return ProvisioningFailed, nil // e.g. FIRMWARE_NOT_TRUSTED: no push will come
	case s == PairingReceived && e == ValidationPassed:
		return ApplyingConfig, nil
	case s == PairingReceived && e == ValidationFailed:
		return ProvisioningFailed, nil
	case s == ApplyingConfig && e == ApplySucceeded:
		return TestingConnection, nil
	case s == ApplyingConfig && e == ApplyFailed:
		return ProvisioningFailed, nil
	case s == TestingConnection && e == ConnectionSucceeded:
		return Provisioned, nil
	case s == TestingConnection && e == ConnectionFailed:
		return ProvisioningFailed, nil
	case s == ProvisioningFailed && e == ButtonPressed:
		return Unprovisioned, nil // retry
	case s == Provisioned && e == FactoryReset:
		return Unprovisioned, nil
	case s == Unprovisioned && e == FactoryResetFailed:
		return Provisioned, nil // nothing was erased: the provisioning stays
	case s == Provisioned && e == Reprovision:
		return ReadyToPair, nil
	case s == ProvisioningFailed && e == FallBack:
		return Provisioned, nil
	case s == Provisioned && e == Decommission:
		return Decommissioned, nil
	case s == Decommissioned && e == DecommissionFailed:
		return Provisioned, nil // nothing was erased: the provisioning stays
	}
	return s, fmt.Errorf("%s in %s: %w", e, s, ErrInvalid)
}
