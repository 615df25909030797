package renew_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"testing"

	"github.com/zmonitor/firmware/internal/central/store/pgtest"
	"github.com/zmonitor/firmware/internal/fw/conncheck"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/fw/renew"
	"github.com/zmonitor/firmware/internal/fw/settings"
	"github.com/zmonitor/firmware/internal/testkit/fleet"
)

// powerCut is what a cut store operation panics with.
type powerCut struct{ step string }

// cutter counts the renewal's writes to the TPM and the settings and,
// at the cut-th, cuts the power (panics) before it happens, or, with fail,
// makes it fail with an error instead. steps records every write seen.
type cutter struct {
	cut   int
	fail  bool
	n     int
	steps []string
}

var errInjected = errors.New("injected store failure")

func (c *cutter) step(name string) error {
	c.n++
	c.steps = append(c.steps, name)
	if c.n != c.cut {
		return nil
	}
	if c.fail {
		return fmt.Errorf("%s: %w", name, errInjected)
	}
	panic(powerCut{name})
}

// cutKeys is the key store with its writes counted (NewClientKey is a
// write: a transient TPM object, lost in a power cut).
type cutKeys struct {
	keys.Store
	c *cutter
}

func (k cutKeys) NewClientKey() (keys.ClientKey, error) {
	if err := k.c.step("new key"); err != nil {
		return nil, err
	}
	ck, err := k.Store.NewClientKey()
	if err != nil {
		return nil, err
	}
	return cutClientKey{ck, k.c}, nil
}

func (k cutKeys) ForgetClientKeyAt(s keys.Slot) error {
	if err := k.c.step("evict slot " + s.String()); err != nil {
		return err
	}
	return k.Store.ForgetClientKeyAt(s)
}

type cutClientKey struct {
	keys.ClientKey
	c *cutter
}

func (k cutClientKey) CommitTo(s keys.Slot) error {
	if err := k.c.step("commit key to slot " + s.String()); err != nil {
		return err
	}
	return k.ClientKey.CommitTo(s)
}

type cutSettings struct {
	*settings.Store
	c *cutter
}

func (s cutSettings) Renew(oldCertDER, newCertDER []byte, newKeyRef string) (settings.Provisioning, error) {
	if err := s.c.step("settings commit"); err != nil {
		return settings.Provisioning{}, err
	}
	return s.Store.Renew(oldCertDER, newCertDER, newKeyRef)
}

// renewCut runs one renewal with c cutting; it reports whether the power
// was cut (and at which step).
func renewCut(t *testing.T, d *fleet.Device, c *cutter) (cutAt string, res renew.Result, err error) {
	t.Helper()
	deps := d.Deps()
	deps.Keys = cutKeys{d.Keys, c}
	deps.Settings = cutSettings{d.Settings, c}
	defer func() {
		if r := recover(); r != nil {
			pc, ok := r.(powerCut)
			if !ok {
				panic(r)
			}
			cutAt = pc.step
		}
	}()
	res, err = renew.Renew(context.Background(), deps, d.Current(t))
	return "", res, err
}

// reboot is what the device does at boot after a power cut: reopen the
// settings, evict the keys they do not name (renew.Leftovers), and check
// that the committed slot holds the committed certificate's key (the boot
// plan's checkCommittedKey). It returns the committed provisioning.
func reboot(t *testing.T, d *fleet.Device) settings.Provisioning {
	t.Helper()
	d.Settings.Close()
	set, err := settings.Open(d.SettingsPath, d.Audit)
	if err != nil {
		t.Fatalf("settings after the power cut: %v", err)
	}
	t.Cleanup(func() { set.Close() })
	d.Settings = set
	p, ok, err := set.Current()
	if err != nil || !ok {
		t.Fatalf("nothing committed after the power cut: %v, %v", ok, err)
	}
	if _, err := renew.Leftovers(d.Keys, &p); err != nil {
		t.Fatalf("leftover keys: %v", err)
	}
	slot, err := keys.SlotOfRef(p.ClientKeyRef)
	if err != nil {
		t.Fatal(err)
	}
	k, err := d.Keys.ClientKeyAt(slot)
	if err != nil {
		t.Fatalf("the settings name slot %s, which holds no key: %v (neither pair works)", slot, err)
	}
	cert, err := x509.ParseCertificate(p.ClientCertDER)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.PublicKey.(*ecdsa.PublicKey).Equal(k.Public()) {
		t.Fatalf("slot %s holds a key that is not the committed certificate's (neither pair works)", slot)
	}
	if _, err := d.Keys.ClientKeyAt(slot.Other()); !errors.Is(err, keys.ErrNoClientKey) {
		t.Errorf("slot %s still holds a key after the boot: %v", slot.Other(), err)
	}
	return p
}

// A power cut at every write of a renewal (a new TPM key, the evictions,
// the key's commit to the other slot, the settings commit, and after the
// last one): after the reboot the device has the old pair or the new one,
// never neither, its other slot is empty, its monitoring connection works
// with what it has, and it renews again. The same with each write failing
// with an error instead: the renewal fails and the old pair stays, unless
// only the last eviction failed (then the new pair is in force and the
// boot evicts the old key).
func TestRenewPowerCutAtEveryStep(t *testing.T) {
	s := fleet.NewStation(t, pgtest.SQLiteDSN(t))
	// A clean run counts the writes.
	probe := s.NewDevice(t, "ZM-PROBE")
	all := &cutter{}
	if _, _, err := renewCut(t, probe, all); err != nil {
		t.Fatal(err)
	}
	if len(all.steps) < 4 {
		t.Fatalf("a renewal made only these writes: %v", all.steps)
	}
	t.Logf("writes of a renewal: %q", all.steps)
	for _, fail := range []bool{false, true} {
		for cut := 1; cut <= len(all.steps)+1; cut++ {
			name := fmt.Sprintf("cut=%d", cut)
			if fail {
				name = fmt.Sprintf("fail=%d", cut)
			}
			t.Run(name, func(t *testing.T) {
				d := s.NewDevice(t, fmt.Sprintf("ZM-%t-%d", fail, cut))
				old := d.Current(t)
				c := &cutter{cut: cut, fail: fail}
				cutAt, res, err := renewCut(t, d, c)
				switch {
				case cut > len(all.steps):
					if cutAt != "" || err != nil {
						t.Fatalf("no cut, yet %q %v", cutAt, err)
					}
				case !fail && cutAt == "":
					t.Fatalf("no power cut at write %d (%v)", cut, c.steps)
				case fail && err == nil && res.OldKeyLeft == nil:
					t.Fatalf("write %d (%s) failed and the renewal did not say so", cut, c.steps[len(c.steps)-1])
				}
				p := reboot(t, d)
				renewed := string(p.ClientCertDER) != string(old.ClientCertDER)
				if fail && err != nil && renewed {
					t.Errorf("a failed renewal (%v) switched", err)
				}
				t.Logf("write %d (of %q): %s", cut, c.steps, map[bool]string{false: "old pair", true: "new pair"}[renewed])
				// The monitoring connection with what the device has.
				slot, _ := keys.SlotOfRef(p.ClientKeyRef)
				k, _ := d.Keys.ClientKeyAt(slot)
				if _, err := renew.CheckConnection(conncheck.Config{Attempts: 1})(context.Background(), p.ServerURL, p.CACertDER, p.ClientCertDER, k); err != nil {
					t.Fatalf("after the power cut the device cannot connect: %v", err)
				}
				// And it renews again.
				if _, err := d.Renew(context.Background()); err != nil {
					t.Fatalf("renewal after the power cut: %v", err)
				}
				reboot(t, d)
			})
		}
	}
}
