package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
)

// TestPairingsFilter: each filter of the operator's pairings list alone
// and together, newest first, the limit.
func TestPairingsFilter(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		clk := clocktest.New(t0)
		s := openAt(t, dsn, clk)
		ctx := context.Background()
		for _, id := range []string{"ZM-001", "ZM-002"} {
			if _, err := s.ImportDevice(ctx, newEnrollmentFor(t, id)); err != nil {
				t.Fatal(err)
			}
		}
		a, _ := webFixture(t, s, RoleTechnician)
		b, _ := webFixture(t, s, RoleTechnician)
		for i, p := range []struct {
			dev, tech string
			state     PairingState
		}{{"ZM-001", a.ID, PairingSucceeded}, {"ZM-002", b.ID, PairingFailed}, {"ZM-001", b.ID, PairingFailed}, {"ZM-002", a.ID, PairingRunning}} {
			clk.Advance(time.Minute)
			id := "p-" + string(rune('0'+i))
			if err := s.CreatePairing(ctx, Pairing{ID: id, DeviceID: p.dev, TechnicianID: p.tech, Method: MethodQR, State: PairingQueued}); err != nil {
				t.Fatal(err)
			}
			if p.state.Final() {
				if err := s.FinishPairing(ctx, id, p.state, "", ""); err != nil {
					t.Fatal(err)
				}
			} else if err := s.UpdatePairing(ctx, id, p.state, "", ""); err != nil {
				t.Fatal(err)
			}
		}
		for name, c := range map[string]struct {
			f    PairingFilter
			want string
		}{
			"all":              {PairingFilter{}, "p-3 p-2 p-1 p-0"},
			"failed":           {PairingFilter{State: PairingFailed}, "p-2 p-1"},
			"device":           {PairingFilter{DeviceID: "ZM-001"}, "p-2 p-0"},
			"technician":       {PairingFilter{TechnicianID: a.ID}, "p-3 p-0"},
			"time":             {PairingFilter{Since: t0.Add(2 * time.Minute), Until: t0.Add(4 * time.Minute)}, "p-2 p-1"},
			"failed on ZM-001": {PairingFilter{State: PairingFailed, DeviceID: "ZM-001"}, "p-2"},
			"limit":            {PairingFilter{Limit: 1}, "p-3"},
			"none":             {PairingFilter{DeviceID: "ZM-404"}, ""},
		} {
			ps, err := s.Pairings(ctx, c.f)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got := strings.Join(ids(ps), " "); got != c.want {
				t.Errorf("%s: %q, want %q", name, got, c.want)
			}
		}
	})
}

// TestSearchAudit: each filter of the audit trail alone, an event family
// by its prefix (and not a longer name), LIKE's wildcards taken
// literally, newest first with a limit.
func TestSearchAudit(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		clk := clocktest.New(t0)
		s := openAt(t, dsn, clk)
		ctx := context.Background()
		for _, r := range []AuditRecord{
			{Actor: "t-a", Event: "pairing.accepted", DeviceID: "ZM-001", Detail: "pairing=p-1"},
			{Actor: "t-b", Event: "pairing.failed", DeviceID: "ZM-002", Detail: "pairing=p-2: 100% lost"},
			{Actor: "t-a", Event: "pairings.other", Detail: "pairing=p-10"},
			{Actor: "cli", Event: "device.import", DeviceID: "ZM-001"},
		} {
			clk.Advance(time.Minute)
			if err := s.Audit(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		for name, c := range map[string]struct {
			f    AuditFilter
			want string
		}{
			"all":          {AuditFilter{}, "pairing.accepted pairing.failed pairings.other device.import"},
			"actor":        {AuditFilter{Actor: "t-a"}, "pairing.accepted pairings.other"},
			"family":       {AuditFilter{Event: "pairing"}, "pairing.accepted pairing.failed"},
			"event":        {AuditFilter{Event: "device.import"}, "device.import"},
			"device":       {AuditFilter{DeviceID: "ZM-001"}, "pairing.accepted device.import"},
			"contains":     {AuditFilter{Contains: "pairing=p-1"}, "pairing.accepted pairings.other"},
			"literal %":    {AuditFilter{Contains: "100%"}, "pairing.failed"},
			"literal _":    {AuditFilter{Contains: "pairing_"}, ""},
			"time":         {AuditFilter{Since: t0.Add(2 * time.Minute), Until: t0.Add(3 * time.Minute)}, "pairing.failed"},
			"newest first": {AuditFilter{NewestFirst: true, Limit: 2}, "device.import pairings.other"},
		} {
			var got []string
			if err := s.SearchAudit(ctx, c.f, func(r AuditRecord) error { got = append(got, r.Event); return nil }); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if g := strings.Join(got, " "); g != c.want {
				t.Errorf("%s: %q, want %q", name, g, c.want)
			}
		}
	})
}
