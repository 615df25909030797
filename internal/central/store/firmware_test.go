package store

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/image/manifest"
	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
	"github.com/zmonitor/firmware/internal/proto/enroll"
	"github.com/zmonitor/firmware/internal/testkit/fakeak"
)

func TestFirmwareAllowList(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		clk := clocktest.New(t0)
		st := openAt(t, dsn, clk)
		img := strings.Repeat("ab", 32)
		if _, err := st.FirmwareImage(ctx, img); !errors.Is(err, ErrNotFound) {
			t.Fatalf("lookup before allow: %v, want ErrNotFound", err)
		}
		if err := st.DenyFirmware(ctx, img); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deny before allow: %v, want ErrNotFound", err)
		}
		fw := Firmware{Authenticode: img, Version: "1.2.3", Board: "qemu-virt-secure", PCR4: strings.Repeat("04", 32), PCR7: strings.Repeat("07", 32)}
		if err := st.AllowFirmware(ctx, fw); err != nil {
			t.Fatal(err)
		}
		got, err := st.FirmwareImage(ctx, img)
		if err != nil || got.Version != "1.2.3" || got.PCR4 != fw.PCR4 || got.PCR7 != fw.PCR7 || got.Denied() || !got.AllowedAt.Equal(t0) {
			t.Fatalf("allowed entry %+v, %v", got, err)
		}
		if err := st.DenyFirmware(ctx, img); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.FirmwareImage(ctx, img); !got.Denied() {
			t.Error("denied image not marked denied")
		}
		if err := st.AllowFirmware(ctx, fw); err != nil {
			t.Fatal(err)
		}
		list, err := st.FirmwareImages(ctx)
		if err != nil || len(list) != 1 || list[0].Denied() {
			t.Fatalf("list after re-allow %+v, %v", list, err)
		}
	})
}

func TestFirmwareFromManifest(t *testing.T) {
	m := manifest.Manifest{UEFI: &manifest.UEFI{Authenticode: strings.Repeat("ab", 32), PCRs: []manifest.PCR{{Index: 4, Bank: "sha256", Value: strings.Repeat("04", 32)}}}}
	if _, err := FirmwareFromManifest(m); err == nil {
		t.Error("an invalid manifest was accepted")
	}
}

func TestImportKeepsTheAttestationKey(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := openAt(t, dsn, clocktest.New(t0))
		id, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		pay, _ := ecdh.P256().GenerateKey(rand.Reader)
		rec, err := enroll.New(&id.PublicKey, pay.PublicKey(), "ZM-001", "SN-1", "1.2.3")
		if err != nil {
			t.Fatal(err)
		}
		old, _ := rec.Marshal()
		ak := fakeak.New(t)
		c := ak.Certified(t, id)
		withAK, err := rec.WithAttestationKey(c.Public, c.CertifyInfo, c.CertifySignature)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := withAK.Marshal()
		// An old record first: the device has no attestation key.
		items, err := ParseEnrollments(old)
		if err != nil || items[0].Err != nil {
			t.Fatal(err, items[0].Err)
		}
		if r, err := st.ImportDevice(ctx, items[0].Enrollment); err != nil || r != ImportAdded {
			t.Fatalf("import old record: %v, %v", r, err)
		}
		if d, _ := st.Device(ctx, "ZM-001"); d.AttestationKey != nil {
			t.Fatal("attestation key from an old record")
		}
		// The re-exported record adds it.
		items, _ = ParseEnrollments(b)
		if items[0].Err != nil {
			t.Fatal(items[0].Err)
		}
		if r, err := st.ImportDevice(ctx, items[0].Enrollment); err != nil || r != ImportUpdated {
			t.Fatalf("import record with AK: %v, %v", r, err)
		}
		d, _ := st.Device(ctx, "ZM-001")
		if string(d.AttestationKey) != string(c.Public) {
			t.Fatal("enrolled attestation key is not the record's")
		}
		// Another attestation key for the same device is a conflict.
		c2 := fakeak.New(t).Certified(t, id)
		other, _ := rec.WithAttestationKey(c2.Public, c2.CertifyInfo, c2.CertifySignature)
		b2, _ := other.Marshal()
		items, _ = ParseEnrollments(b2)
		if _, err := st.ImportDevice(ctx, items[0].Enrollment); !errors.Is(err, ErrConflict) {
			t.Fatalf("another attestation key: %v, want ErrConflict", err)
		}
		// A record whose AK another identity certified does not parse.
		stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		c3 := fakeak.New(t).Certified(t, stranger)
		forged := rec
		forged.AttestationKey, forged.AttestationCertifyInfo, forged.AttestationCertifySignature = b64(c3.Public), b64(c3.CertifyInfo), b64(c3.CertifySignature)
		b3, _ := forged.Marshal()
		if items, err := ParseEnrollments(b3); err == nil && items[0].Err == nil {
			t.Fatal("a record whose attestation key another identity certified was accepted")
		}
	})
}
