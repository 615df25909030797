package settings

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/zmonitor/firmware/internal/fw/audit/audittest"
	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

func tempPath(t *testing.T) string { return filepath.Join(t.TempDir(), FileName) }

// raw runs fn on the file with bbolt directly, as a hand-made file would.
func raw(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func schema(t *testing.T, path string) (v int, extra []byte) {
	t.Helper()
	raw(t, path, func(tx *bolt.Tx) error {
		var err error
		v, err = schemaOf(tx)
		if m := tx.Bucket(bucketMeta); m != nil {
			extra = append(extra, m.Get([]byte("migrated"))...)
		}
		return err
	})
	return v, extra
}

func validProvisioning(t *testing.T) Provisioning {
	t.Helper()
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	ca, err := testpki.NewCA("ca", now)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.NewLeaf(testpki.ClientTemplate("client"), now)
	if err != nil {
		t.Fatal(err)
	}
	return Provisioning{ServerURL: "https://cs.example:8443", DeviceID: "ZM-001", DeviceLabel: "ICU-MON-04",
		CACertDER: ca.Cert.Raw, ClientCertDER: leaf.Cert.Raw, ClientKeyRef: "0x81000003", ConfigVersion: 1, ProvisionedAt: now}
}

func TestVersion0FileIsMigrated(t *testing.T) {
	path := tempPath(t)
	raw(t, path, func(*bolt.Tx) error { return nil }) // a bbolt file with no buckets
	if v, _ := schema(t, path); v != 0 {
		t.Fatalf("hand-made file has schema %d", v)
	}
	s, err := Open(path, &audittest.Recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stage(validProvisioning(t)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if v, _ := schema(t, path); v != SchemaVersion {
		t.Fatalf("schema after Open = %d, want %d", v, SchemaVersion)
	}
}

func TestVersion0FileWithForeignBucketsRefused(t *testing.T) {
	path := tempPath(t)
	raw(t, path, func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err })
	_, err := Open(path, &audittest.Recorder{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `"other"`) {
		t.Fatalf("Open of a foreign file = %v, want ErrCorrupt naming the bucket", err)
	}
}

// The migration hook: a v2 file meets firmware that knows v3.
func TestMigrationHook(t *testing.T) {
	path := tempPath(t)
	s, err := Open(path, &audittest.Recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stage(validProvisioning(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	s.Close()

	failing := func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Put([]byte("migrated"), []byte("half")); err != nil {
			return err
		}
		return errors.New("disk says no")
	}
	if _, err := open(path, &audittest.Recorder{}, time.Second, []migration{migrate0to1, migrate1to2, failing}); err == nil || !strings.Contains(err.Error(), "migrate schema 2 to 3") {
		t.Fatalf("failing migration: Open = %v", err)
	}
	if v, extra := schema(t, path); v != 2 || extra != nil {
		t.Fatalf("a failed migration left schema %d, meta %q", v, extra)
	}

	to3 := func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put([]byte("migrated"), []byte("v3")) }
	s, err = open(path, &audittest.Recorder{}, time.Second, []migration{migrate0to1, migrate1to2, to3})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Current(); !ok || err != nil {
		t.Fatalf("data lost in migration: %v %v", ok, err)
	}
	s.Close()
	if v, extra := schema(t, path); v != 3 || string(extra) != "v3" {
		t.Fatalf("after migration: schema %d, meta %q", v, extra)
	}
	// This firmware (v2) now refuses the v3 file.
	if _, err := Open(path, &audittest.Recorder{}); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer file = %v, want ErrSchemaTooNew", err)
	}
}

func TestBadSchemaVersion(t *testing.T) {
	for _, v := range []string{"", "x", "0", "-3"} {
		path := tempPath(t)
		raw(t, path, func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			return b.Put(keySchema, []byte(v))
		})
		if _, err := Open(path, &audittest.Recorder{}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("schemaVersion %q: Open = %v, want ErrCorrupt", v, err)
		}
	}
}

func TestMissingBucketIsCorrupt(t *testing.T) {
	path := tempPath(t)
	s, err := Open(path, &audittest.Recorder{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketDevice) })
	if _, err := Open(path, &audittest.Recorder{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open without the device bucket = %v, want ErrCorrupt", err)
	}
}

func TestSecondOpenFailsClearly(t *testing.T) {
	path := tempPath(t)
	s, err := open(path, &audittest.Recorder{}, time.Second, migrations())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = open(path, &audittest.Recorder{}, 100*time.Millisecond, migrations())
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open = %v, want ErrLocked", err)
	}
}

func TestCorruptRecordsAreReported(t *testing.T) {
	p := validProvisioning(t)
	good, err := encode(p)
	if err != nil {
		t.Fatal(err)
	}
	http := strings.Replace(string(good), "https://", "http://", 1)
	for _, tc := range []struct{ name, val string }{
		{"garbage", "\x00\x01garbage"},
		{"truncated", string(good[:len(good)/2])},
		{"unknown field", strings.Replace(string(good), `{`, `{"privateKey":"x",`, 1)},
		{"trailing data", string(good) + "{}"},
		{"invalid content", http},
		{"bad time", strings.Replace(string(good), "2026-11-27T00:00:00Z", "yesterday", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tempPath(t)
			s, err := Open(path, &audittest.Recorder{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Stage(p); err != nil {
				t.Fatal(err)
			}
			if err := s.Commit(); err != nil {
				t.Fatal(err)
			}
			if err := s.Stage(p); err != nil {
				t.Fatal(err)
			}
			s.Close()
			raw(t, path, func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketProv)
				if err := b.Put(keyCurrent, []byte(tc.val)); err != nil {
					return err
				}
				if err := b.Put(keyStage, []byte(tc.val)); err != nil {
					return err
				}
				return tx.Bucket(bucketDevice).Put(keyLastFailure, []byte("bad code\n"))
			})
			// Open discards the corrupt stage; the corrupt current
			// and device state are reported, not trusted.
			rec := &audittest.Recorder{}
			s, err = Open(path, rec)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if len(rec.Named(EventStageDiscarded)) != 1 {
				t.Fatalf("corrupt stage not discarded and audited: %+v", rec.Events())
			}
			if _, ok, err := s.Current(); ok || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Current of a corrupt record: ok=%v err=%v", ok, err)
			}
			if _, err := s.LastFailure(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("LastFailure of a corrupt record: %v", err)
			}
		})
	}
}

func TestCorruptStage(t *testing.T) {
	path := tempPath(t)
	s, err := Open(path, &audittest.Recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stage(validProvisioning(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	put := func() {
		raw(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketProv).Put(keyStage, []byte("{garbage")) })
	}
	s.Close()
	put()
	// The leftover garbage stage is discarded and audited at Open.
	rec := &audittest.Recorder{}
	s, err = Open(path, rec)
	if err != nil {
		t.Fatal(err)
	}
	if ev := rec.Named(EventStageDiscarded); len(ev) != 1 || !strings.Contains(ev[0].Reason, "unreadable") {
		t.Fatalf("events %+v", rec.Events())
	}
	// A stage damaged while open: Staged and Commit report it, the
	// current provisioning is untouched, Discard clears it.
	s.Close()
	s, err = Open(path, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketProv).Put(keyStage, []byte("{garbage")) }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Staged(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Staged = %v, want ErrCorrupt", err)
	}
	if err := s.Commit(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Commit of a corrupt stage = %v, want ErrCorrupt", err)
	}
	if cur, ok, err := s.Current(); !ok || err != nil || cur.ConfigVersion != 1 {
		t.Fatalf("Current after refused commit = %+v, %v, %v", cur, ok, err)
	}
	if err := s.Discard(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Staged(); ok || err != nil {
		t.Fatalf("Staged after Discard: %v %v", ok, err)
	}
}
