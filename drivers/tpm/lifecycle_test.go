package tpm

import (
	"crypto/ecdsa"
	"errors"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// evictRaw removes the persistent object at h behind the store's back.
func evictRaw(t *testing.T, b backend, h tpm2.TPMHandle) {
	t.Helper()
	tp := b.open(t)
	defer tp.Close()
	rsp, err := tpm2.ReadPublic{ObjectHandle: h}.Execute(tp)
	if err != nil {
		t.Fatalf("ReadPublic 0x%08x: %v", uint32(h), err)
	}
	_, err = tpm2.EvictControl{
		Auth:             tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		ObjectHandle:     tpm2.NamedHandle{Handle: h, Name: rsp.Name},
		PersistentHandle: h,
	}.Execute(tp)
	if err != nil {
		t.Fatalf("evict 0x%08x: %v", uint32(h), err)
	}
}

func TestEnrolledIdentityIsNeverRegenerated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, err := New(b.open(t), provision)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		evictRaw(t, b, DefaultPayloadHandle)
		for _, opts := range []*Opts{nil, provision} {
			_, err := New(b.open(t), opts)
			if !errors.Is(err, ErrKeyMissing) {
				t.Fatalf("payload missing (provision=%v): err = %v, want ErrKeyMissing", opts != nil, err)
			}
		}
		if n := rawTransient(t, b); n != 0 {
			t.Fatalf("%d transient handles after failed New", n)
		}
	})
}

func TestUnfinishedFirstBootIsRedone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, err := New(b.open(t), provision)
		if err != nil {
			t.Fatal(err)
		}
		oldPay := s.PayloadKey().PublicKey()
		_ = s.Close()
		// A power cut after the payload key, before the identity key.
		evictRaw(t, b, DefaultIdentityHandle)
		if _, err := New(b.open(t), nil); !errors.Is(err, ErrKeyMissing) {
			t.Fatalf("Load: err = %v, want ErrKeyMissing", err)
		}
		s2 := newStore(t, b, provision)
		if s2.PayloadKey().PublicKey().Equal(oldPay) {
			t.Fatal("unenrolled payload key was kept")
		}
		requireTransient(t, s2, 0, "redone first boot")
	})
}

func TestForeignKeyAtHandleIsMismatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		// Put a payload-shaped key at the identity handle.
		s := newStore(t, b, &Opts{Provision: true, IdentityHandle: 0x81010010, PayloadHandle: DefaultIdentityHandle})
		wrongPub := s.PayloadKey().PublicKey()
		_ = s.Close()
		for _, opts := range []*Opts{nil, provision} {
			_, err := New(b.open(t), opts)
			if !errors.Is(err, ErrKeyMismatch) {
				t.Fatalf("err = %v, want ErrKeyMismatch", err)
			}
		}
		// Nothing was replaced.
		tp := b.open(t)
		defer tp.Close()
		rsp, err := tpm2.ReadPublic{ObjectHandle: DefaultIdentityHandle}.Execute(tp)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := rsp.OutPublic.Contents()
		pt, _ := eccPoint(p)
		if !pt.Equal(wrongPub) {
			t.Fatal("the key at the identity handle was replaced")
		}
	})
}

func TestFailedOperationsLeaveNoTransientHandles(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		// Wrong owner auth on a blank TPM: CreatePrimary fails.
		if _, err := New(b.open(t), &Opts{Provision: true, OwnerAuth: []byte("wrong")}); !errors.Is(err, ErrAuth) {
			t.Fatalf("wrong owner auth: err = %v, want ErrAuth", err)
		}
		if n := rawTransient(t, b); n != 0 {
			t.Fatalf("%d transient handles after failed CreatePrimary", n)
		}
		// SRK present, device keys absent, wrong owner auth: Create and
		// Load succeed, EvictControl fails; the loaded key must be flushed.
		s, err := New(b.open(t), provision)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		evictRaw(t, b, DefaultIdentityHandle)
		evictRaw(t, b, DefaultPayloadHandle)
		_, err = New(b.open(t), &Opts{Provision: true, OwnerAuth: []byte("wrong")})
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("wrong owner auth at persist: err = %v, want ErrAuth", err)
		}
		if n := rawTransient(t, b); n != 0 {
			t.Fatalf("%d transient handles after failed EvictControl", n)
		}
		// Commit with the wrong owner auth fails and keeps the key pending
		// (one handle, counted), Discard then frees it.
		s = newStore(t, b, provision)
		bad := s.opts
		bad.OwnerAuth = []byte("wrong")
		s.opts = bad
		k, err := s.NewClientKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Commit(); !errors.Is(err, ErrAuth) {
			t.Fatalf("Commit with wrong owner auth: err = %v, want ErrAuth", err)
		}
		requireTransient(t, s, 1, "failed Commit (key still pending)")
		if err := k.Discard(); err != nil {
			t.Fatal(err)
		}
		requireTransient(t, s, 0, "Discard after failed Commit")
		// Failed signing and ECDH requests.
		if _, err := s.Identity().Sign(nil, []byte("short"), nil); err == nil {
			t.Fatal("Sign with nil opts succeeded")
		}
		requireTransient(t, s, 0, "failed Sign")
	})
}

func TestClosedStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, err := New(b.open(t), provision)
		if err != nil {
			t.Fatal(err)
		}
		id := s.Identity()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := id.Sign(nil, sha("x"), sha256Opts{}); !errors.Is(err, ErrClosed) {
			t.Fatalf("Sign after Close: err = %v, want ErrClosed", err)
		}
		if _, err := s.NewClientKey(); !errors.Is(err, ErrClosed) {
			t.Fatalf("NewClientKey after Close: err = %v, want ErrClosed", err)
		}
		_ = id.Public().(*ecdsa.PublicKey)
	})
}

func TestConcurrentUseIsSerialized(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := newStore(t, b, provision)
		errs := make(chan error, 8)
		for i := 0; i < 8; i++ {
			go func() {
				d := sha("concurrent")
				sig, err := s.Identity().Sign(nil, d, sha256Opts{})
				if err == nil && !ecdsa.VerifyASN1(s.Identity().Public().(*ecdsa.PublicKey), d, sig) {
					err = errors.New("bad signature")
				}
				errs <- err
			}()
		}
		for i := 0; i < 8; i++ {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		requireTransient(t, s, 0, "concurrent signing")
	})
}

func TestForeignKeyAtClientHandleIsMismatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		// A payload-shaped key at the client handle.
		s := newStore(t, b, &Opts{Provision: true, PayloadHandle: DefaultClientHandle, ClientHandle: 0x81010011})
		_ = s.Close()
		s2 := newStore(t, b, &Opts{Provision: true, IdentityHandle: 0x81010012, PayloadHandle: 0x81010013})
		if _, err := s2.CommittedClientKey(); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("err = %v, want ErrKeyMismatch", err)
		}
		// Commit replaces whatever is at the handle; Forget evicts it.
		k, err := s2.NewClientKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Commit(); err != nil {
			t.Fatal(err)
		}
		if _, err := s2.CommittedClientKey(); err != nil {
			t.Fatal(err)
		}
	})
}
