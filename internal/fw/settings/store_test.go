package settings_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/fw/audit/audittest"
	"github.com/zmonitor/firmware/internal/fw/settings"
)

func TestStageCommitCurrent(t *testing.T) {
	c := newCerts(t)
	s := mustOpen(t, dbPath(t), &audittest.Recorder{})
	if _, ok, err := s.Current(); ok || err != nil {
		t.Fatalf("fresh store: Current ok=%v err=%v", ok, err)
	}
	for v := 1; v <= 3; v++ {
		p := c.gen(v)
		if err := s.Stage(p); err != nil {
			t.Fatal(err)
		}
		st, ok, err := s.Staged()
		if err != nil || !ok || !equal(st, p) {
			t.Fatalf("Staged = %+v, %v, %v", st, ok, err)
		}
		if cur, ok, _ := s.Current(); v > 1 && (!ok || cur.ConfigVersion != v-1) {
			t.Fatalf("Stage changed the current provisioning: %+v", cur)
		}
		if err := s.Commit(); err != nil {
			t.Fatal(err)
		}
		cur, ok, err := s.Current()
		if err != nil || !ok || !equal(cur, p) {
			t.Fatalf("Current after commit = %+v, %v, %v", cur, ok, err)
		}
		if _, ok, err := s.Staged(); ok || err != nil {
			t.Fatalf("stage left after commit (ok=%v err=%v)", ok, err)
		}
	}
}

func TestReadBackIsUTC(t *testing.T) {
	c := newCerts(t)
	s := mustOpen(t, dbPath(t), &audittest.Recorder{})
	p := c.gen(1)
	p.ProvisionedAt = time.Date(2026, 11, 27, 11, 0, 0, 5, time.FixedZone("CET", 3600))
	if err := s.Stage(p); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Staged()
	if err != nil || got.ProvisionedAt.Location() != time.UTC || !got.ProvisionedAt.Equal(p.ProvisionedAt) {
		t.Fatalf("ProvisionedAt read back as %v (%v)", got.ProvisionedAt, err)
	}
}

func TestStageTwiceRefused(t *testing.T) {
	c := newCerts(t)
	s := mustOpen(t, dbPath(t), &audittest.Recorder{})
	if err := s.Stage(c.gen(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Stage(c.gen(2)); !errors.Is(err, settings.ErrStageExists) {
		t.Fatalf("second Stage = %v, want ErrStageExists", err)
	}
	if st, _, _ := s.Staged(); st.ConfigVersion != 1 {
		t.Fatalf("second Stage replaced the stage: version %d", st.ConfigVersion)
	}
}

func TestCommitWithoutStage(t *testing.T) {
	c := newCerts(t)
	s := mustOpen(t, dbPath(t), &audittest.Recorder{})
	if err := s.Commit(); !errors.Is(err, settings.ErrNoStage) {
		t.Fatalf("Commit on an empty store = %v, want ErrNoStage", err)
	}
	if err := s.Stage(c.gen(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(); !errors.Is(err, settings.ErrNoStage) {
		t.Fatalf("second Commit = %v, want ErrNoStage", err)
	}
	if cur, ok, err := s.Current(); !ok || err != nil || cur.ConfigVersion != 1 {
		t.Fatalf("Current = %+v, %v, %v", cur, ok, err)
	}
}

func TestDiscard(t *testing.T) {
	c := newCerts(t)
	s := mustOpen(t, dbPath(t), &audittest.Recorder{})
	if err := s.Stage(c.gen(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stage(c.gen(2)); err != nil {
		t.Fatal(err)
	}
	if err := s.Discard(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Staged(); ok || err != nil {
		t.Fatalf("stage left after Discard (ok=%v err=%v)", ok, err)
	}
	if cur, _, _ := s.Current(); cur.ConfigVersion != 1 {
		t.Fatalf("Discard changed the current provisioning: version %d", cur.ConfigVersion)
	}
	if err := s.Discard(); err != nil {
		t.Fatalf("Discard with nothing staged = %v, want nil", err)
	}
	if err := s.Stage(c.gen(3)); err != nil {
		t.Fatalf("Stage after Discard: %v", err)
	}
}

func TestValidateRefuses(t *testing.T) {
	c := newCerts(t)
	keyDER, _ := hex.DecodeString("307702010104201a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2ba00a06082a8648ce3d030107")
	scalar := strings.Repeat("1a2b3c4d", 8)
	for _, tc := range []struct {
		name string
		mod  func(*settings.Provisioning)
	}{
		{"http URL", func(p *settings.Provisioning) { p.ServerURL = "http://cs.example:8443" }},
		{"no host", func(p *settings.Provisioning) { p.ServerURL = "https:///x" }},
		{"opaque", func(p *settings.Provisioning) { p.ServerURL = "https:cs.example" }},
		{"user info", func(p *settings.Provisioning) { p.ServerURL = "https://u:pw@cs.example" }},
		{"fragment", func(p *settings.Provisioning) { p.ServerURL = "https://cs.example/#x" }},
		{"bad URL", func(p *settings.Provisioning) { p.ServerURL = "https://cs.example:port" }},
		{"long URL", func(p *settings.Provisioning) { p.ServerURL = "https://cs.example/" + strings.Repeat("a", 3000) }},
		{"no device id", func(p *settings.Provisioning) { p.DeviceID = "" }},
		{"device id with space", func(p *settings.Provisioning) { p.DeviceID = "ZM 001" }},
		// The one rule (internal/proto/ident): what the QR and the payload allow.
		{"device id of 33 bytes", func(p *settings.Provisioning) { p.DeviceID = strings.Repeat("Z", 33) }},
		{"device id starting with a dot", func(p *settings.Provisioning) { p.DeviceID = ".ZM-001" }},
		{"label with U+FFFD", func(p *settings.Provisioning) { p.DeviceLabel = "ICU\ufffd" }},
		{"label with newline", func(p *settings.Provisioning) { p.DeviceLabel = "ICU\nMON" }},
		{"label bad utf8", func(p *settings.Provisioning) { p.DeviceLabel = "ICU\xff" }},
		{"long label", func(p *settings.Provisioning) { p.DeviceLabel = strings.Repeat("L", 65) }},
		{"no CA", func(p *settings.Provisioning) { p.CACertDER = nil }},
		{"CA not a certificate", func(p *settings.Provisioning) { p.CACertDER = []byte("not der") }},
		{"CA with trailing data", func(p *settings.Provisioning) { p.CACertDER = append(append([]byte{}, c.ca[0]...), 0) }},
		{"client cert garbage", func(p *settings.Provisioning) { p.ClientCertDER = []byte{0x30, 0x03, 1, 2, 3} }},
		{"no key ref", func(p *settings.Provisioning) { p.ClientKeyRef = "" }},
		{"PEM key ref", func(p *settings.Provisioning) {
			p.ClientKeyRef = "-----BEGIN EC PRIVATE KEY-----MHcCAQEEIB-----END EC PRIVATE KEY-----"
		}},
		{"base64 key ref", func(p *settings.Provisioning) { p.ClientKeyRef = base64.StdEncoding.EncodeToString(keyDER) }},
		{"base64url key ref", func(p *settings.Provisioning) { p.ClientKeyRef = base64.RawURLEncoding.EncodeToString(keyDER) }},
		{"hex scalar key ref", func(p *settings.Provisioning) { p.ClientKeyRef = "key:" + scalar }},
		{"DER key ref", func(p *settings.Provisioning) { p.ClientKeyRef = string(keyDER) }},
		{"key ref with space", func(p *settings.Provisioning) { p.ClientKeyRef = "tpm handle 1" }},
		{"negative version", func(p *settings.Provisioning) { p.ConfigVersion = -1 }},
		{"no time", func(p *settings.Provisioning) { p.ProvisionedAt = time.Time{} }},
	} {
		s := mustOpen(t, dbPath(t), &audittest.Recorder{})
		p := c.gen(1)
		tc.mod(&p)
		err := s.Stage(p)
		if !errors.Is(err, settings.ErrInvalid) {
			t.Errorf("%s: Stage = %v, want ErrInvalid", tc.name, err)
			continue
		}
		if strings.Contains(err.Error(), "MHcCAQEEIB") || strings.Contains(err.Error(), scalar) {
			t.Errorf("%s: the error repeats key material: %v", tc.name, err)
		}
		if _, ok, _ := s.Staged(); ok {
			t.Errorf("%s: an invalid provisioning was staged", tc.name)
		}
	}
}

func TestKeyRefsAccepted(t *testing.T) {
	c := newCerts(t)
	for _, ref := range []string{"0x81000003", "keystore:committed-client-key", "tpm:persistent:0x81000003", "slot-2"} {
		p := c.gen(1)
		p.ClientKeyRef = ref
		if err := p.Validate(); err != nil {
			t.Errorf("key reference %q refused: %v", ref, err)
		}
	}
}

func TestOpenDiscardsLeftoverStage(t *testing.T) {
	c := newCerts(t)
	path := dbPath(t)
	s := mustOpen(t, path, &audittest.Recorder{})
	if err := s.Stage(c.gen(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stage(c.gen(2)); err != nil {
		t.Fatal(err)
	}
	s.Close() // the power cut

	// The recorder failing keeps the stage for the next attempt.
	broken := &audittest.Recorder{Err: errors.New("disk full")}
	if _, err := settings.Open(path, broken); err == nil || !strings.Contains(err.Error(), "STAGE_DISCARDED") {
		t.Fatalf("Open with a failing recorder = %v, want a STAGE_DISCARDED error", err)
	}

	rec := &audittest.Recorder{}
	s = mustOpen(t, path, rec)
	ev := rec.Named(settings.EventStageDiscarded)
	if len(ev) != 1 || !strings.Contains(ev[0].Reason, "config version 2") || !strings.Contains(ev[0].Reason, "cs-2.hospital.example") {
		t.Fatalf("audit events %+v, want one STAGE_DISCARDED naming version 2", rec.Events())
	}
	if _, ok, err := s.Staged(); ok || err != nil {
		t.Fatalf("stage survived Open (ok=%v err=%v)", ok, err)
	}
	if cur, ok, err := s.Current(); !ok || err != nil || cur.ConfigVersion != 1 {
		t.Fatalf("Current = %+v, %v, %v; want version 1", cur, ok, err)
	}
	s.Close()
	rec = &audittest.Recorder{}
	mustOpen(t, path, rec)
	if n := len(rec.Events()); n != 0 {
		t.Fatalf("a clean Open recorded %d events", n)
	}
}

func TestFactoryReset(t *testing.T) {
	c := newCerts(t)
	s := mustOpen(t, dbPath(t), &audittest.Recorder{})
	for _, step := range []func() error{
		func() error { return s.Stage(c.gen(1)) }, s.Commit,
		func() error { return s.Stage(c.gen(2)) },
		func() error { return s.SaveLastFailure("CONNECTION_FAILED") },
		s.FactoryReset,
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	_, okCur, err1 := s.Current()
	_, okStage, err2 := s.Staged()
	code, err3 := s.LastFailure()
	if okCur || okStage || code != "" || err1 != nil || err2 != nil || err3 != nil {
		t.Fatalf("after FactoryReset: current %v stage %v last failure %q (%v %v %v)", okCur, okStage, code, err1, err2, err3)
	}
	if err := s.FactoryReset(); err != nil {
		t.Fatalf("FactoryReset on an empty store: %v", err)
	}
}

func TestLastFailure(t *testing.T) {
	path := dbPath(t)
	s := mustOpen(t, path, &audittest.Recorder{})
	if code, err := s.LastFailure(); code != "" || err != nil {
		t.Fatalf("fresh LastFailure = %q, %v", code, err)
	}
	if err := s.SaveLastFailure("PAIRING_CODE_MISMATCH"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"pairing", "A B", "X\n", strings.Repeat("A", 65)} {
		if err := s.SaveLastFailure(bad); err == nil {
			t.Errorf("SaveLastFailure(%q) accepted", bad)
		}
	}
	s.Close()
	s = mustOpen(t, path, &audittest.Recorder{})
	if code, err := s.LastFailure(); code != "PAIRING_CODE_MISMATCH" || err != nil {
		t.Fatalf("LastFailure after reopen = %q, %v", code, err)
	}
	if err := s.SaveLastFailure(""); err != nil {
		t.Fatal(err)
	}
	if code, _ := s.LastFailure(); code != "" {
		t.Fatalf("cleared failure reads %q", code)
	}
}

// The wrong codes' times survive a reopen, in order, to the nanosecond;
// an empty list clears them; more than MaxWrongCodes is refused.
func TestWrongCodesSurviveAReopen(t *testing.T) {
	path := dbPath(t)
	s := mustOpen(t, path, &audittest.Recorder{})
	if at, err := s.WrongCodes(); len(at) != 0 || err != nil {
		t.Fatalf("fresh WrongCodes = %v, %v", at, err)
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	want := []time.Time{t0, t0.Add(time.Minute), t0.Add(2 * time.Minute)}
	if err := s.SaveWrongCodes(want); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveWrongCodes(make([]time.Time, settings.MaxWrongCodes+1)); err == nil {
		t.Error("more than MaxWrongCodes saved")
	}
	s.Close()
	s = mustOpen(t, path, &audittest.Recorder{})
	got, err := s.WrongCodes()
	if err != nil || len(got) != len(want) {
		t.Fatalf("after reopen: %v, %v", got, err)
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("time %d = %s, want %s", i, got[i], want[i])
		}
	}
	if err := s.SaveWrongCodes(nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.WrongCodes(); len(got) != 0 || err != nil {
		t.Fatalf("cleared: %v, %v", got, err)
	}
}

func TestClosedStore(t *testing.T) {
	c := newCerts(t)
	s, err := settings.Open(dbPath(t), &audittest.Recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, errCur := s.Current()
	_, _, errStaged := s.Staged()
	_, errLast := s.LastFailure()
	for name, err := range map[string]error{
		"Stage": s.Stage(c.gen(1)), "Commit": s.Commit(), "Discard": s.Discard(), "FactoryReset": s.FactoryReset(),
		"SaveLastFailure": s.SaveLastFailure("X"), "Current": errCur, "Staged": errStaged, "LastFailure": errLast,
	} {
		if !errors.Is(err, settings.ErrClosed) {
			t.Errorf("%s on a closed store = %v, want ErrClosed", name, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := settings.Open(dbPath(t), nil); err == nil {
		t.Error("Open without a recorder succeeded")
	}
	if _, err := settings.Open(t.TempDir()+"/missing/settings.db", &audittest.Recorder{}); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
}

// TestConcurrentReaders reads while a writer commits: every read is one
// whole version, and versions never go back.
func TestConcurrentReaders(t *testing.T) {
	c := newCerts(t)
	s := mustOpen(t, dbPath(t), &audittest.Recorder{})
	const versions = 40
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				cur, ok, err := s.Current()
				if err != nil {
					errs <- err
					return
				}
				if !ok {
					continue
				}
				if err := consistent(cur); err != nil {
					errs <- err
					return
				}
				if cur.ConfigVersion < seen {
					errs <- errors.New("a reader saw the version go back")
					return
				}
				seen = cur.ConfigVersion
			}
		}()
	}
	for v := 1; v <= versions; v++ {
		if err := s.Stage(c.gen(v)); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func BenchmarkStageCommit(b *testing.B) {
	c := newCerts(b)
	s := mustOpen(b, dbPath(b), &audittest.Recorder{})
	v := 0
	b.ReportAllocs()
	for b.Loop() {
		v++
		if err := s.Stage(c.gen(v)); err != nil {
			b.Fatal(err)
		}
		if err := s.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCurrent(b *testing.B) {
	c := newCerts(b)
	s := mustOpen(b, dbPath(b), &audittest.Recorder{})
	if err := s.Stage(c.gen(1)); err != nil {
		b.Fatal(err)
	}
	if err := s.Commit(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Current(); err != nil {
			b.Fatal(err)
		}
	}
}

// Opening an up-to-date file without a stage writes nothing (no commit, no
// fsync on the boot path).
func TestCleanOpenWritesNothing(t *testing.T) {
	c := newCerts(t)
	path := dbPath(t)
	s := mustOpen(t, path, &audittest.Recorder{})
	if err := s.Stage(c.gen(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mustOpen(t, path, &audittest.Recorder{}).Close()
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("a clean Open changed the file (a needless write transaction)")
	}
}

// Renew swaps the certificate and the key reference of the committed
// provisioning in one transaction, only from the certificate it renews.
func TestRenew(t *testing.T) {
	c := newCerts(t)
	s := mustOpen(t, dbPath(t), &audittest.Recorder{})
	p := c.gen(1)
	p.ESTURL = "https://cs.hospital.example/.well-known/est"
	if err := s.Stage(p); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Renew(c.client[0], c.client[0], "keystore:committed-client-key-b"); !errors.Is(err, settings.ErrNotCurrent) {
		t.Fatalf("renewing a certificate that is not the committed one: %v, want ErrNotCurrent", err)
	}
	got, err := s.Renew(p.ClientCertDER, c.client[0], "keystore:committed-client-key-b")
	if err != nil {
		t.Fatal(err)
	}
	cur, ok, err := s.Current()
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if !bytes.Equal(cur.ClientCertDER, c.client[0]) || cur.ClientKeyRef != "keystore:committed-client-key-b" {
		t.Fatalf("after Renew: certificate or key reference not replaced")
	}
	want := p
	want.ClientCertDER, want.ClientKeyRef = c.client[0], "keystore:committed-client-key-b"
	if !equal(cur, want) || !equal(got, want) {
		t.Fatalf("Renew changed more than the certificate and the key reference:\n got %+v\nwant %+v", cur, want)
	}
	if _, err := s.Renew(c.client[0], []byte("not a certificate"), "ref"); err == nil {
		t.Fatal("Renew stored an invalid certificate")
	}
	if err := s.FactoryReset(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Renew(c.client[0], c.client[1], "ref"); !errors.Is(err, settings.ErrNotCurrent) {
		t.Fatalf("Renew after a factory reset: %v, want ErrNotCurrent", err)
	}
	if _, ok, _ := s.Current(); ok {
		t.Fatal("Renew after a factory reset committed a provisioning")
	}
}

func TestLastKnownTime(t *testing.T) {
	s := mustOpen(t, dbPath(t), &audittest.Recorder{})
	if got, err := s.LastKnownTime(); err != nil || !got.IsZero() {
		t.Fatalf("fresh store: %v, %v", got, err)
	}
	if err := s.SaveLastKnownTime(base); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveLastKnownTime(base.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LastKnownTime(); !got.Equal(base) {
		t.Fatalf("an earlier time replaced the stored one: %v", got)
	}
	if err := s.SaveLastKnownTime(base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LastKnownTime(); !got.Equal(base.Add(time.Hour)) {
		t.Fatalf("LastKnownTime = %v", got)
	}
	if err := s.SaveLastKnownTime(time.Time{}); err == nil {
		t.Fatal("saved the zero time")
	}
}
