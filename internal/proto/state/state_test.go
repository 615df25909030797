package state

import (
	"errors"
	"testing"
)

// The spec's transitions (DOC-PROC-001 section 5), plus the factory reset
// of a provisioned device, the two ways entering a state can fail (the
// pairing session cannot start; the factory reset cannot erase the
// settings) and the Central Station's refusal after a hello (firmware not
// trusted). Every other (state, event) pair must be refused.
var valid = map[[2]int]State{
	{int(Unprovisioned), int(ButtonPressed)}:           ReadyToPair,
	{int(Unprovisioned), int(ConsoleProvision)}:        ReadyToPair,
	{int(ReadyToPair), int(SessionExpired)}:            Unprovisioned,
	{int(ReadyToPair), int(SessionStartFailed)}:        Unprovisioned,
	{int(ReadyToPair), int(ConfigReceived)}:            PairingReceived,
	{int(ReadyToPair), int(CentralRefused)}:            ProvisioningFailed,
	{int(PairingReceived), int(ValidationPassed)}:      ApplyingConfig,
	{int(PairingReceived), int(ValidationFailed)}:      ProvisioningFailed,
	{int(ApplyingConfig), int(ApplySucceeded)}:         TestingConnection,
	{int(ApplyingConfig), int(ApplyFailed)}:            ProvisioningFailed,
	{int(TestingConnection), int(ConnectionSucceeded)}: Provisioned,
	{int(TestingConnection), int(ConnectionFailed)}:    ProvisioningFailed,
	{int(ProvisioningFailed), int(ButtonPressed)}:      Unprovisioned,
	{int(Provisioned), int(FactoryReset)}:              Unprovisioned,
	{int(Unprovisioned), int(FactoryResetFailed)}:      Provisioned,
	{int(Provisioned), int(Decommission)}:              Decommissioned,
	{int(Decommissioned), int(DecommissionFailed)}:     Provisioned,
	{int(Decommissioned), int(ButtonPressed)}:          ReadyToPair,
	{int(Decommissioned), int(ConsoleProvision)}:       ReadyToPair,
	{int(Provisioned), int(Reprovision)}:               ReadyToPair,
	{int(ProvisioningFailed), int(FallBack)}:           Provisioned,
}

func TestEveryStateEventPair(t *testing.T) {
	facts := Facts{ConsoleMayProvision: true}
	for _, s := range All {
		for _, e := range AllEvents {
			got, err := Next(s, e, facts)
			want, ok := valid[[2]int{int(s), int(e)}]
			if ok {
				if err != nil || got != want {
					t.Errorf("Next(%s, %s) = %s, %v; want %s", s, e, got, err, want)
				}
				continue
			}
			if !errors.Is(err, ErrInvalid) || got != s {
				t.Errorf("Next(%s, %s) = %s, %v; want refusal staying in %s", s, e, got, err, s)
			}
		}
	}
}

func TestUnknownValuesAreRefused(t *testing.T) {
	for _, c := range []struct {
		s State
		e Event
	}{{0, ButtonPressed}, {99, ButtonPressed}, {Unprovisioned, 0}, {Unprovisioned, 42}, {-1, -1}} {
		got, err := Next(c.s, c.e, Facts{})
		if !errors.Is(err, ErrInvalid) || got != c.s {
			t.Errorf("Next(%d, %d) = %v, %v", c.s, c.e, got, err)
		}
	}
}

func TestFactsGateEnteringReadyToPair(t *testing.T) {
	if got, err := Next(Unprovisioned, ButtonPressed, Facts{LockedOut: true}); !errors.Is(err, ErrLockedOut) || got != Unprovisioned {
		t.Errorf("locked out button: %s, %v", got, err)
	}
	if got, err := Next(Unprovisioned, ConsoleProvision, Facts{}); !errors.Is(err, ErrNotAllowed) || got != Unprovisioned {
		t.Errorf("console provisioning without permission: %s, %v", got, err)
	}
	if got, err := Next(Unprovisioned, ConsoleProvision, Facts{ConsoleMayProvision: true, LockedOut: true}); !errors.Is(err, ErrLockedOut) || got != Unprovisioned {
		t.Errorf("locked out console: %s, %v", got, err)
	}
}

// A decommissioned device pairs again like an unprovisioned one, under the
// same lockout.
func TestDecommissionedPairsAgainUnderTheLockout(t *testing.T) {
	if got, err := Next(Decommissioned, ButtonPressed, Facts{LockedOut: true}); !errors.Is(err, ErrLockedOut) || got != Decommissioned {
		t.Errorf("locked out button: %s, %v", got, err)
	}
	if got, err := Next(Decommissioned, ConsoleProvision, Facts{}); !errors.Is(err, ErrNotAllowed) || got != Decommissioned {
		t.Errorf("console provisioning without permission: %s, %v", got, err)
	}
}

// A re-provisioning whose session ends without a new provisioning goes
// back to the previous one.
func TestFallbackReturnsToProvisioned(t *testing.T) {
	for _, e := range []Event{SessionExpired, SessionStartFailed} {
		if got, err := Next(ReadyToPair, e, Facts{Fallback: true}); err != nil || got != Provisioned {
			t.Errorf("Next(READY_TO_PAIR, %s) with a fallback = %s, %v; want PROVISIONED", e, got, err)
		}
	}
}

func TestNamesRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range All {
		n := s.String()
		if seen[n] {
			t.Errorf("duplicate name %s", n)
		}
		seen[n] = true
		back, err := Parse(n)
		if err != nil || back != s {
			t.Errorf("Parse(%q) = %v, %v", n, back, err)
		}
	}
	if _, err := Parse("PROVISIONED_ISH"); err == nil {
		t.Error("Parse accepted an unknown name")
	}
	if State(42).String() != "STATE(42)" || Event(42).String() != "EVENT(42)" {
		t.Error("unknown values are not named as such")
	}
	for _, e := range AllEvents {
		if e.String() == "" || e.String()[0] == 'E' && e.String()[:6] == "EVENT(" {
			t.Errorf("event %d has no name", int(e))
		}
	}
}

func TestBusy(t *testing.T) {
	for _, s := range All {
		want := s == PairingReceived || s == ApplyingConfig || s == TestingConnection
		if s.Busy() != want {
			t.Errorf("%s.Busy() = %v", s, s.Busy())
		}
	}
}
