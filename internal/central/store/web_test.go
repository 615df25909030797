package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
)

// webFixture is a technician with a fresh enrollment link.
func webFixture(t *testing.T, s Store, role Role) (Technician, Secret) {
	t.Helper()
	ctx := context.Background()
	tok, err := NewTechnicianToken(nil)
	if err != nil {
		t.Fatal(err)
	}
	tech, err := s.AddTechnician(ctx, tok.ID, "Grace", tok.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if role == RoleOperator {
		if err := s.SetTechnicianRole(ctx, tech.ID, role); err != nil {
			t.Fatal(err)
		}
	}
	link, err := EnrollmentSecret.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateEnrollmentLink(ctx, EnrollmentLink{ID: link.ID, TechnicianID: tech.ID, Hash: link.Hash, CreatedBy: "cli", ExpiresAt: t0.Add(15 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	return tech, link
}

func passkeyFor(techID, id string) Passkey {
	return Passkey{ID: id, TechnicianID: techID, CredentialID: []byte("cred-" + id), Credential: []byte(`{"id":"` + id + `"}`), Name: "tablet " + id}
}

func TestRolesAreStored(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := openAt(t, dsn, clocktest.New(t0))
		ctx := context.Background()
		tech, _ := webFixture(t, s, RoleTechnician)
		op, _ := webFixture(t, s, RoleOperator)
		for _, c := range []struct {
			id   string
			want Role
		}{{tech.ID, RoleTechnician}, {op.ID, RoleOperator}} {
			got, err := s.Technician(ctx, c.id)
			if err != nil {
				t.Fatal(err)
			}
			if got.Role != c.want {
				t.Errorf("%s: role %v, want %v", c.id, got.Role, c.want)
			}
		}
		if err := s.SetTechnicianRole(ctx, tech.ID, Role(7)); err == nil {
			t.Error("role 7 accepted")
		}
		if err := s.SetTechnicianRole(ctx, "t-00000000", RoleOperator); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown technician: %v, want ErrNotFound", err)
		}
	})
}

func TestEnrollmentLinkIsUsedOnceAndExpires(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		clk := clocktest.New(t0)
		s := openAt(t, dsn, clk)
		ctx := context.Background()
		tech, link := webFixture(t, s, RoleTechnician)
		l, err := s.EnrollmentLink(ctx, link.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !TokenMatches(l.Hash, link.Token) || TokenMatches(l.Hash, link.Token+"x") {
			t.Error("the stored hash does not match the token alone")
		}
		if err := s.RedeemEnrollmentLink(ctx, link.ID, passkeyFor("t-00000000", "k-1")); err == nil {
			t.Error("a passkey for another technician redeemed the link")
		}
		if err := s.RedeemEnrollmentLink(ctx, link.ID, passkeyFor(tech.ID, "k-1")); err != nil {
			t.Fatal(err)
		}
		if err := s.RedeemEnrollmentLink(ctx, link.ID, passkeyFor(tech.ID, "k-2")); !errors.Is(err, ErrAlreadyUsed) {
			t.Errorf("second use: %v, want ErrAlreadyUsed", err)
		}
		if l, _ := s.EnrollmentLink(ctx, link.ID); l.UsedAt.IsZero() || l.PasskeyID != "k-1" {
			t.Errorf("link after use: %+v", l)
		}
		ks, err := s.Passkeys(ctx, tech.ID)
		if err != nil || len(ks) != 1 || ks[0].ID != "k-1" || ks[0].Name != "tablet k-1" {
			t.Fatalf("passkeys %+v, %v; want k-1 only", ks, err)
		}

		_, late := webFixture(t, s, RoleTechnician)
		clk.Advance(15 * time.Minute)
		if err := s.RedeemEnrollmentLink(ctx, late.ID, passkeyFor(tech.ID, "k-3")); !errors.Is(err, ErrExpired) {
			t.Errorf("after 15 minutes: %v, want ErrExpired", err)
		}
	})
}

func TestEnrollmentLinkRaceHasOneWinner(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		a := openAt(t, dsn, clocktest.New(t0))
		b := openAt(t, dsn, clocktest.New(t0))
		tech, link := webFixture(t, a, RoleTechnician)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := a
				if i%2 == 1 {
					s = b
				}
				errs[i] = s.RedeemEnrollmentLink(context.Background(), link.ID, passkeyFor(tech.ID, "k-"+string(rune('a'+i))))
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrAlreadyUsed):
				t.Errorf("loser: %v, want ErrAlreadyUsed", err)
			}
		}
		if won != 1 {
			t.Errorf("%d redemptions won, want 1", won)
		}
	})
}

func TestRevokingEndsSessions(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := openAt(t, dsn, clocktest.New(t0))
		ctx := context.Background()
		tech, link := webFixture(t, s, RoleTechnician)
		if err := s.RedeemEnrollmentLink(ctx, link.ID, passkeyFor(tech.ID, "k-tablet1")); err != nil {
			t.Fatal(err)
		}
		_, link2 := webFixture(t, s, RoleTechnician)
		// A second link for the same technician (a second tablet).
		if err := s.CreateEnrollmentLink(ctx, EnrollmentLink{ID: link2.ID + "0", TechnicianID: tech.ID, Hash: link2.Hash, ExpiresAt: t0.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if err := s.RedeemEnrollmentLink(ctx, link2.ID+"0", passkeyFor(tech.ID, "k-tablet2")); err != nil {
			t.Fatal(err)
		}
		session := func(id, passkey string) {
			sec, err := SessionSecret.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.CreateWebSession(ctx, WebSession{ID: id, Hash: sec.Hash, TechnicianID: tech.ID, PasskeyID: passkey}); err != nil {
				t.Fatal(err)
			}
		}
		session("s-1", "k-tablet1")
		session("s-2", "k-tablet2")
		ended := func(id string) bool {
			ws, err := s.WebSession(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return ws.Ended()
		}

		if err := s.RevokePasskey(ctx, "k-tablet1"); err != nil {
			t.Fatal(err)
		}
		if !ended("s-1") || ended("s-2") {
			t.Errorf("after revoking tablet 1's passkey: session 1 ended %v (want true), session 2 ended %v (want false)", ended("s-1"), ended("s-2"))
		}
		if err := s.UsePasskey(ctx, "k-tablet1", []byte(`{}`)); !errors.Is(err, ErrRevoked) {
			t.Errorf("sign-in with a revoked passkey: %v, want ErrRevoked", err)
		}
		if err := s.TouchWebSession(ctx, "s-1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("touching an ended session: %v, want ErrNotFound", err)
		}
		if err := s.UsePasskey(ctx, "k-tablet2", []byte(`{"signCount":2}`)); err != nil {
			t.Fatal(err)
		}
		if k, _ := s.Passkey(ctx, "k-tablet2"); string(k.Credential) != `{"signCount":2}` || k.LastUsedAt.IsZero() {
			t.Errorf("after a sign-in the passkey is %+v", k)
		}

		if err := s.RevokeTechnician(ctx, tech.ID); err != nil {
			t.Fatal(err)
		}
		if !ended("s-2") {
			t.Error("revoking the technician left their session")
		}
		ks, err := s.Passkeys(ctx, tech.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			if !k.Revoked() {
				t.Errorf("revoking the technician left passkey %s", k.ID)
			}
		}
		if err := s.RevokePasskey(ctx, "k-none"); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoking an unknown passkey: %v", err)
		}
	})
}

func TestRevokedTechnicianCannotEnroll(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := openAt(t, dsn, clocktest.New(t0))
		ctx := context.Background()
		tech, link := webFixture(t, s, RoleTechnician)
		if err := s.RevokeTechnician(ctx, tech.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.RedeemEnrollmentLink(ctx, link.ID, passkeyFor(tech.ID, "k-1")); !errors.Is(err, ErrRevoked) {
			t.Errorf("link of a revoked technician: %v, want ErrRevoked", err)
		}
	})
}

func TestCeremonyIsTakenOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		clk := clocktest.New(t0)
		s := openAt(t, dsn, clk)
		ctx := context.Background()
		for _, id := range []string{"c-1", "c-2"} {
			if err := s.SaveCeremony(ctx, Ceremony{ID: id, Kind: "sign-in", Data: []byte(`{"challenge":"x"}`), ExpiresAt: t0.Add(5 * time.Minute)}); err != nil {
				t.Fatal(err)
			}
		}
		c, err := s.TakeCeremony(ctx, "c-1")
		if err != nil || c.Kind != "sign-in" || string(c.Data) != `{"challenge":"x"}` {
			t.Fatalf("take: %+v, %v", c, err)
		}
		if _, err := s.TakeCeremony(ctx, "c-1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second take: %v, want ErrNotFound", err)
		}
		clk.Advance(5 * time.Minute)
		if _, err := s.TakeCeremony(ctx, "c-2"); !errors.Is(err, ErrExpired) {
			t.Errorf("take after expiry: %v, want ErrExpired", err)
		}
	})
}

func TestTechnicianPairingsAreTheirsOnly(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		clk := clocktest.New(t0)
		s := openAt(t, dsn, clk)
		ctx := context.Background()
		if _, err := s.ImportDevice(ctx, newEnrollmentFor(t, "ZM-001")); err != nil {
			t.Fatal(err)
		}
		a, _ := webFixture(t, s, RoleTechnician)
		b, _ := webFixture(t, s, RoleTechnician)
		for i, tech := range []string{a.ID, b.ID, a.ID} {
			clk.Advance(time.Minute)
			if err := s.CreatePairing(ctx, Pairing{ID: "p-" + string(rune('0'+i)), DeviceID: "ZM-001", TechnicianID: tech, Method: MethodQR, State: PairingQueued}); err != nil {
				t.Fatal(err)
			}
		}
		ps, err := s.TechnicianPairings(ctx, a.ID, t0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 2 || ps[0].ID != "p-2" || ps[1].ID != "p-0" {
			t.Errorf("a's pairings %v, want p-2, p-0 (newest first)", ids(ps))
		}
		if ps, _ := s.TechnicianPairings(ctx, a.ID, t0.Add(2*time.Minute), 10); len(ps) != 1 {
			t.Errorf("since the second minute: %v, want p-2", ids(ps))
		}
	})
}

func ids(ps []Pairing) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func TestSecretKinds(t *testing.T) {
	for _, k := range []SecretKind{EnrollmentSecret, SessionSecret} {
		s, err := k.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		if id, err := k.IDOf(s.Token); err != nil || id != s.ID {
			t.Errorf("IDOf(%s...) = %q, %v; want %q", s.ID, id, err, s.ID)
		}
		if !TokenMatches(s.Hash, s.Token) {
			t.Error("hash does not match")
		}
		for _, bad := range []string{"", s.ID, s.Token + "x", s.Token[:len(s.Token)-1], "t-0123456789abcdef." + s.Token[len(s.ID)+1:], "\x00" + s.Token[1:]} {
			if _, err := k.IDOf(bad); err == nil {
				t.Errorf("IDOf(%q) accepted", bad)
			}
		}
	}
	e, _ := EnrollmentSecret.New(nil)
	if _, err := SessionSecret.IDOf(e.Token); err == nil {
		t.Error("an enrollment token passes as a session token")
	}
}
