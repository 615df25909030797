package settings

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/zmonitor/firmware/internal/fw/audit"
)

// FileName is the settings file's name in the data directory.
const FileName = "settings.db"

// SchemaVersion is the schema this firmware writes.
const SchemaVersion = 2

// DefaultLockTimeout is how long Open waits for another holder of the file.
const DefaultLockTimeout = 2 * time.Second

// EventStageDiscarded is the audit event Open records when it discards a
// leftover stage.
const EventStageDiscarded = "STAGE_DISCARDED"

var (
	bucketMeta   = []byte("meta")
	bucketProv   = []byte("provisioning")
	bucketDevice = []byte("device")

	keySchema      = []byte("schemaVersion")
	keyCurrent     = []byte("current")
	keyStage       = []byte("stage")
	keyLastFailure = []byte("lastFailure")
	keyLockout     = []byte("wrongCodes")
	keyLastKnown   = []byte("lastKnownTime")
)

// Errors callers may test with errors.Is.
var (
	ErrNoStage      = errors.New("settings: no provisioning is staged")
	ErrStageExists  = errors.New("settings: a provisioning is already staged; commit or discard it first")
	ErrSchemaTooNew = errors.New("settings: the settings file was written by newer firmware")
	ErrLocked       = errors.New("settings: the settings file is in use")
	ErrClosed       = errors.New("settings: store is closed")
	// ErrNotCurrent is returned by Renew when the committed provisioning
	// is not (any more) the one the renewal started from.
	ErrNotCurrent = errors.New("settings: the committed provisioning changed")
)

// migration upgrades the file from version i to i+1 (its index in the
// list) inside the migrating transaction.
type migration func(tx *bolt.Tx) error

// migrations is the schema's history; len(migrations) == SchemaVersion.
// Never edit a shipped entry: append a new one.
func migrations() []migration {
	return []migration{migrate0to1, migrate1to2}
}

// migrate1to2 changes no record: version 2 adds the provisioning's
// optional estUrl member and the device's last known good time, which
// firmware of version 1 would refuse to read (its decoder refuses unknown
// members), so the version says so.
func migrate1to2(*bolt.Tx) error { return nil }

// migrate0to1 creates the v1 layout in a file that has no buckets (a new
// file). A file without a schema version that holds anything is not ours.
func migrate0to1(tx *bolt.Tx) error {
	var names []string
	if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		names = append(names, strconv.Quote(string(name)))
		return nil
	}); err != nil {
		return err
	}
	if len(names) > 0 {
		return fmt.Errorf("%w: no schema version but buckets %v: not a settings file", ErrCorrupt, names)
	}
	for _, b := range [][]byte{bucketMeta, bucketProv, bucketDevice} {
		if _, err := tx.CreateBucket(b); err != nil {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	return nil
}

// Store is the open settings file. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string
}

// Open opens (creating if needed) the settings file at path, migrates its
// schema, and discards and audits a stage left by an interrupted pairing.
// rec receives STAGE_DISCARDED. If another process holds the file Open
// fails with ErrLocked after DefaultLockTimeout.
func Open(path string, rec audit.Recorder) (*Store, error) {
	return open(path, rec, DefaultLockTimeout, migrations())
}

func open(path string, rec audit.Recorder, timeout time.Duration, migs []migration) (*Store, error) {
	if rec == nil {
		return nil, errors.New("settings: open: an audit recorder is required")
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("settings: open %s: %w by another opener (waited %v)", path, ErrLocked, timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("settings: open %s: %w", path, err)
	}
	s := &Store{db: db, path: path}
	if err := s.migrate(migs); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.discardLeftover(rec); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// schemaOf reads the file's schema version (0 without a meta bucket).
func schemaOf(tx *bolt.Tx) (int, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, nil
	}
	raw := meta.Get(keySchema)
	v, err := strconv.Atoi(string(raw))
	if err != nil || v < 1 {
		return 0, fmt.Errorf("%w: schemaVersion %q", ErrCorrupt, raw)
	}
	return v, nil
}

// migrate brings the file to len(migs) in one transaction and checks the
// layout.
func (s *Store) migrate(migs []migration) error {
	// Read first: a write transaction commits (and fsyncs) even when it
	// changes nothing, and the file is almost always up to date.
	var current int
	err := s.db.View(func(tx *bolt.Tx) error {
		v, err := schemaOf(tx)
		current = v
		return err
	})
	if err != nil {
		return fmt.Errorf("settings: open %s: %w", s.path, err)
	}
	if current > len(migs) {
		return fmt.Errorf("settings: open %s: %w: file has schema version %d, this firmware knows up to %d", s.path, ErrSchemaTooNew, current, len(migs))
	}
	if current < len(migs) {
		err = s.runMigrations(migs)
	}
	if err != nil {
		return fmt.Errorf("settings: open %s: %w", s.path, err)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketProv, bucketDevice} {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("%w: bucket %s missing", ErrCorrupt, b)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("settings: open %s: %w", s.path, err)
	}
	return nil
}

// runMigrations runs the migrations the file still needs in one transaction.
func (s *Store) runMigrations(migs []migration) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		v, err := schemaOf(tx)
		if err != nil {
			return err
		}
		if v > len(migs) {
			return fmt.Errorf("%w: file has schema version %d, this firmware knows up to %d", ErrSchemaTooNew, v, len(migs))
		}
		if v == len(migs) {
			return nil
		}
		for i := v; i < len(migs); i++ {
			if err := migs[i](tx); err != nil {
				return fmt.Errorf("migrate schema %d to %d: %w", i, i+1, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return fmt.Errorf("%w: migration left no meta bucket", ErrCorrupt)
		}
		return meta.Put(keySchema, []byte(strconv.Itoa(len(migs))))
	})
}

// discardLeftover deletes a stage left by an interrupted pairing and
// records STAGE_DISCARDED within the same transaction.
func (s *Store) discardLeftover(rec audit.Recorder) error {
	// Read first (see migrate): there is rarely a stage to discard.
	var staged bool
	if err := s.db.View(func(tx *bolt.Tx) error {
		staged = tx.Bucket(bucketProv).Get(keyStage) != nil
		return nil
	}); err != nil {
		return fmt.Errorf("settings: discard leftover stage: %w", err)
	}
	if !staged {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketProv)
		raw := b.Get(keyStage)
		if raw == nil {
			return nil
		}
		reason := "unreadable staged provisioning from an interrupted pairing discarded at startup"
		if p, err := decode(raw); err == nil {
			host := "?"
			if u, err := url.Parse(p.ServerURL); err == nil {
				host = u.Hostname()
			}
			reason = fmt.Sprintf("staged provisioning from an interrupted pairing discarded at startup (device %s, config version %d, server %s)", p.DeviceID, p.ConfigVersion, host)
		}
		if err := b.Delete(keyStage); err != nil {
			return fmt.Errorf("delete stage: %w", err)
		}
		ev := audit.Event{Event: EventStageDiscarded, Actor: "device", Reason: audit.Sanitize(reason)}
		if err := rec.Record(ev); err != nil {
			return fmt.Errorf("record %s: %w", EventStageDiscarded, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("settings: discard leftover stage: %w", err)
	}
	return nil
}

// Close closes the file.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("settings: close: %w", err)
	}
	return nil
}

// update and view map bbolt's closed-database error to ErrClosed.
func (s *Store) update(step string, fn func(tx *bolt.Tx) error) error {
	if err := s.db.Update(fn); err != nil {
		if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
			err = ErrClosed
		}
		return fmt.Errorf("settings: %s: %w", step, err)
	}
	return nil
}

func (s *Store) view(step string, fn func(tx *bolt.Tx) error) error {
	if err := s.db.View(fn); err != nil {
		if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
			err = ErrClosed
		}
		return fmt.Errorf("settings: %s: %w", step, err)
	}
	return nil
}

// Stage validates p and stores it as the staged provisioning. It fails
// with ErrStageExists when a stage is already there.
func (s *Store) Stage(p Provisioning) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("settings: stage: %w", err)
	}
	raw, err := encode(p)
	if err != nil {
		return fmt.Errorf("settings: stage: %w", err)
	}
	return s.update("stage", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketProv)
		if b.Get(keyStage) != nil {
			return ErrStageExists
		}
		return b.Put(keyStage, raw)
	})
}

// Staged returns the staged provisioning, if any.
func (s *Store) Staged() (Provisioning, bool, error) {
	return s.get("read stage", keyStage)
}

// Current returns the committed provisioning, if any.
func (s *Store) Current() (Provisioning, bool, error) {
	return s.get("read current", keyCurrent)
}

func (s *Store) get(step string, key []byte) (Provisioning, bool, error) {
	var (
		p  Provisioning
		ok bool
	)
	err := s.view(step, func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketProv).Get(key)
		if raw == nil {
			return nil
		}
		var err error
		p, err = decode(raw)
		ok = err == nil
		return err
	})
	return p, ok, err
}

// Commit makes the staged provisioning current and deletes the stage, in
// one transaction. It fails with ErrNoStage when nothing is staged, and
// with ErrCorrupt (changing nothing) when the stage does not read back.
func (s *Store) Commit() error {
	return s.update("commit", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketProv)
		raw := b.Get(keyStage)
		if raw == nil {
			return ErrNoStage
		}
		if _, err := decode(raw); err != nil {
			return fmt.Errorf("stage: %w", err)
		}
		// raw points into the memory map, which a growing file remaps
		// during this transaction's commit: copy it.
		if err := b.Put(keyCurrent, bytes.Clone(raw)); err != nil {
			return fmt.Errorf("write current: %w", err)
		}
		if err := b.Delete(keyStage); err != nil {
			return fmt.Errorf("delete stage: %w", err)
		}
		return nil
	})
}

// Discard deletes the staged provisioning. Discarding when nothing is
// staged is not an error (a pairing may fail before it stages).
func (s *Store) Discard() error {
	return s.update("discard", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketProv).Delete(keyStage)
	})
}

// FactoryReset deletes the current and staged provisioning and the device
// state, in one transaction. The caller audits it (it knows who asked).
func (s *Store) FactoryReset() error {
	return s.update("factory reset", func(tx *bolt.Tx) error {
		for _, k := range [][]byte{keyCurrent, keyStage} {
			if err := tx.Bucket(bucketProv).Delete(k); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketDevice).Delete(keyLastFailure)
	})
}

// SaveLastFailure remembers the failure code of the last provisioning
// attempt (failure.Code.String(), e.g. "CONNECTION_FAILED") so that it can
// be shown after a reboot; "" clears it.
func (s *Store) SaveLastFailure(code string) error {
	if err := checkCode(code); err != nil {
		return fmt.Errorf("settings: save last failure: %w", err)
	}
	return s.update("save last failure", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevice)
		if code == "" {
			return b.Delete(keyLastFailure)
		}
		return b.Put(keyLastFailure, []byte(code))
	})
}

// LastFailure returns the saved failure code, or "" when none.
func (s *Store) LastFailure() (string, error) {
	var code string
	err := s.view("read last failure", func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketDevice).Get(keyLastFailure)
		if err := checkCode(string(raw)); err != nil {
			return fmt.Errorf("%w: last failure: %v", ErrCorrupt, err)
		}
		code = string(raw)
		return nil
	})
	return code, err
}

// MaxWrongCodes bounds the wrong-code times SaveWrongCodes keeps.
const MaxWrongCodes = 16

// SaveWrongCodes remembers the wall times of the recent wrong pairing
// codes (oldest first; none clears them), so that the wrong-code lockout
// survives a power cycle. One transaction: the old list or the new one.
func (s *Store) SaveWrongCodes(at []time.Time) error {
	if len(at) > MaxWrongCodes {
		return fmt.Errorf("settings: save wrong codes: %d times, at most %d", len(at), MaxWrongCodes)
	}
	var b []byte
	for _, t := range at {
		b = t.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '\n')
	}
	return s.update("save wrong codes", func(tx *bolt.Tx) error {
		d := tx.Bucket(bucketDevice)
		if len(at) == 0 {
			return d.Delete(keyLockout)
		}
		return d.Put(keyLockout, b)
	})
}

// WrongCodes returns the wall times SaveWrongCodes saved, oldest first.
// A value that does not parse is ErrCorrupt.
func (s *Store) WrongCodes() ([]time.Time, error) {
	var out []time.Time
	err := s.view("read wrong codes", func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketDevice).Get(keyLockout)
		if len(raw) == 0 {
			return nil
		}
		lines := bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n"))
		if len(lines) > MaxWrongCodes {
			return fmt.Errorf("%w: wrong codes: %d times, at most %d", ErrCorrupt, len(lines), MaxWrongCodes)
		}
		for i, ln := range lines {
			t, err := time.Parse(time.RFC3339Nano, string(ln))
			if err != nil {
				return fmt.Errorf("%w: wrong code %d: %v", ErrCorrupt, i+1, err)
			}
			out = append(out, t)
		}
		return nil
	})
	return out, err
}

// checkCode accepts "" or a failure code identifier.
func checkCode(code string) error {
	if len(code) > 64 {
		return errors.New("failure code longer than 64 bytes")
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '(' || c == ')') {
			return fmt.Errorf("failure code byte %d is not A-Z, 0-9, '_', '(' or ')'", i)
		}
	}
	return nil
}

// Renew replaces the committed client certificate and client key reference
// in one transaction, only if the committed provisioning still holds
// oldCertDER (a factory reset or another commit meanwhile makes it fail
// with ErrNotCurrent, changing nothing). Everything else stays. It returns
// the provisioning now committed. After a power cut the device has either
// the old certificate and key reference or the new ones.
func (s *Store) Renew(oldCertDER, newCertDER []byte, newKeyRef string) (Provisioning, error) {
	var out Provisioning
	err := s.update("renew", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketProv)
		raw := b.Get(keyCurrent)
		if raw == nil {
			return fmt.Errorf("%w: nothing is committed", ErrNotCurrent)
		}
		p, err := decode(raw)
		if err != nil {
			return fmt.Errorf("current: %w", err)
		}
		if !bytes.Equal(p.ClientCertDER, oldCertDER) {
			return fmt.Errorf("%w: the committed client certificate is not the one renewed", ErrNotCurrent)
		}
		p.ClientCertDER, p.ClientKeyRef = bytes.Clone(newCertDER), newKeyRef
		if err := p.Validate(); err != nil {
			return err
		}
		enc, err := encode(p)
		if err != nil {
			return err
		}
		out = p
		return b.Put(keyCurrent, enc)
	})
	return out, err
}

// SaveLastKnownTime persists the device's last known good time
// (clock.Wall.Observe). It never stores an earlier time than the one
// stored.
func (s *Store) SaveLastKnownTime(t time.Time) error {
	if t.IsZero() {
		return errors.New("settings: save last known time: zero time")
	}
	return s.update("save last known time", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevice)
		if raw := b.Get(keyLastKnown); raw != nil {
			if old, err := time.Parse(time.RFC3339Nano, string(raw)); err == nil && !t.After(old) {
				return nil
			}
		}
		return b.Put(keyLastKnown, []byte(t.UTC().Format(time.RFC3339Nano)))
	})
}

// LastKnownTime returns the persisted last known good time, or the zero
// time when none was saved.
func (s *Store) LastKnownTime() (time.Time, error) {
	var t time.Time
	err := s.view("read last known time", func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketDevice).Get(keyLastKnown)
		if raw == nil {
			return nil
		}
		v, err := time.Parse(time.RFC3339Nano, string(raw))
		if err != nil {
			return fmt.Errorf("%w: last known time: %v", ErrCorrupt, err)
		}
		t = v.UTC()
		return nil
	})
	return t, err
}
