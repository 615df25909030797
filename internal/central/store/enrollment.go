package store

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/zmonitor/firmware/internal/proto/enroll"
	"github.com/zmonitor/firmware/internal/proto/ident"
	"github.com/zmonitor/firmware/internal/proto/strictjson"
)

// Limits of ParseEnrollments.
const (
	// MaxEnrollmentInput bounds one import file.
	MaxEnrollmentInput = 16 << 20
	// MaxEnrollmentRecords bounds the records of one file.
	MaxEnrollmentRecords = 100000
	// maxSPKI bounds one base64 key (a P-256 SPKI is 91 bytes).
	maxSPKI = 256
)

// ErrEnrollment is wrapped by every enrollment parsing error.
var ErrEnrollment = errors.New("enrollment record")

// CSVHeader is the header line a CSV enrollment file must start with.
var CSVHeader = []string{"deviceId", "deviceSerial", "identityPublicKey", "payloadPublicKey", "firmwareVersion"}

// EnrollmentItem is one record of an import file: either a valid Enrollment
// or the reason it is not.
type EnrollmentItem struct {
	// Index is the 1-based position of the record in the file (for CSV, the
	// data line number, header not counted).
	Index      int
	DeviceID   string // as read, possibly invalid (for reporting)
	Enrollment Enrollment
	Err        error
}

// ParseEnrollments reads an import file: JSON (one object or an array of
// objects, exactly the five camelCase fields, all strings) or CSV (the
// CSVHeader line, then five fields per line). The format is chosen by the
// first non-space byte ('{' or '[' means JSON). A file-level problem
// (size, syntax, header) is an error; a bad record is reported in its item
// and the others are still returned.
func ParseEnrollments(b []byte) ([]EnrollmentItem, error) {
	if len(b) > MaxEnrollmentInput {
		return nil, fmt.Errorf("%w: file of %d bytes, limit %d", ErrEnrollment, len(b), MaxEnrollmentInput)
	}
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return nil, fmt.Errorf("%w: empty file", ErrEnrollment)
	}
	switch t[0] {
	case '{':
		return []EnrollmentItem{parseJSONRecord(1, t)}, nil
	case '[':
		var raws []json.RawMessage
		dec := json.NewDecoder(bytes.NewReader(t))
		if err := dec.Decode(&raws); err != nil {
			return nil, fmt.Errorf("%w: JSON array: %w", ErrEnrollment, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("%w: data after the JSON array", ErrEnrollment)
		}
		if len(raws) == 0 {
			return nil, fmt.Errorf("%w: empty JSON array", ErrEnrollment)
		}
		if len(raws) > MaxEnrollmentRecords {
			return nil, fmt.Errorf("%w: %d records, limit %d", ErrEnrollment, len(raws), MaxEnrollmentRecords)
		}
		items := make([]EnrollmentItem, len(raws))
		for i, r := range raws {
			items[i] = parseJSONRecord(i+1, r)
		}
		return items, nil
	default:
		return parseCSV(t)
	}
}

// parseJSONRecord parses one record with the device's own parser
// (internal/enroll, the format the manufacturing line exports), then applies
// the inventory's stricter checks (newEnrollment).
func parseJSONRecord(index int, raw []byte) EnrollmentItem {
	it := EnrollmentItem{Index: index}
	j, err := enroll.Parse(raw)
	if err != nil {
		// Name the device in the report when its ID can be read at all.
		var named struct {
			DeviceID string `json:"deviceId"`
		}
		if json.Unmarshal(raw, &named) == nil && ident.CheckDeviceID(named.DeviceID) == nil {
			it.DeviceID = named.DeviceID
		}
		it.Err = fmt.Errorf("%w %d: %w", ErrEnrollment, index, err)
		return it
	}
	// The Central Station's one strict decoder on top (duplicate and
	// case-folded members, null, invalid UTF-8): internal/proto/strictjson.
	var strict enroll.Record
	if err := strictjson.Decode(raw, &strict); err != nil {
		it.Err = fmt.Errorf("%w %d: %w", ErrEnrollment, index, err)
		return it
	}
	it.DeviceID = j.DeviceID
	it.Enrollment, it.Err = newEnrollment(index, j)
	return it
}

func parseCSV(b []byte) ([]EnrollmentItem, error) {
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = len(CSVHeader)
	r.ReuseRecord = false
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: CSV header: %w", ErrEnrollment, err)
	}
	for i, h := range CSVHeader {
		if strings.TrimSpace(strings.TrimPrefix(head[i], "\ufeff")) != h {
			return nil, fmt.Errorf("%w: CSV header must be %s", ErrEnrollment, strings.Join(CSVHeader, ","))
		}
	}
	var items []EnrollmentItem
	for n := 1; ; n++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if n > MaxEnrollmentRecords {
			return nil, fmt.Errorf("%w: more than %d records", ErrEnrollment, MaxEnrollmentRecords)
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
				items = append(items, EnrollmentItem{Index: n, Err: fmt.Errorf("%w %d: %w", ErrEnrollment, n, err)})
				continue
			}
			return nil, fmt.Errorf("%w: CSV: %w", ErrEnrollment, err)
		}
		j := enroll.Record{DeviceID: rec[0], DeviceSerial: rec[1], IdentityKey: rec[2], PayloadKey: rec[3], FirmwareVersion: rec[4]}
		e, err := newEnrollment(n, j)
		items = append(items, EnrollmentItem{Index: n, DeviceID: j.DeviceID, Enrollment: e, Err: err})
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: CSV has no records", ErrEnrollment)
	}
	return items, nil
}

// newEnrollment checks a record beyond what enroll.Record.Keys does: names
// by the rule of internal/proto/ident (the pairing QR's), strict base64,
// ECDSA P-256 keys in SPKI form, and distinct identity and payload keys.
func newEnrollment(index int, j enroll.Record) (Enrollment, error) {
	fail := func(field string, err error) (Enrollment, error) {
		return Enrollment{}, fmt.Errorf("%w %d: %s: %w", ErrEnrollment, index, field, err)
	}
	if err := ident.CheckDeviceID(j.DeviceID); err != nil {
		return fail("deviceId", err)
	}
	if err := ident.CheckSerial(j.DeviceSerial); err != nil {
		return fail("deviceSerial", err)
	}
	if err := ident.CheckFirmwareVersion(j.FirmwareVersion); err != nil {
		return fail("firmwareVersion", err)
	}
	if _, _, err := j.Keys(); err != nil {
		return fail("keys", err)
	}
	id, err := decodeKey(j.IdentityKey)
	if err != nil {
		return fail("identityPublicKey", err)
	}
	if _, err := parseIdentityKey(id); err != nil {
		return fail("identityPublicKey", err)
	}
	pl, err := decodeKey(j.PayloadKey)
	if err != nil {
		return fail("payloadPublicKey", err)
	}
	if _, err := parsePayloadKey(pl); err != nil {
		return fail("payloadPublicKey", err)
	}
	if bytes.Equal(id, pl) {
		return fail("payloadPublicKey", errors.New("same key as the identity key"))
	}
	var ak []byte
	if k, err := j.CheckedAttestationKey(); err != nil {
		return fail("attestationKey", err)
	} else if k != nil {
		ak = k.Public
	}
	return Enrollment{
		DeviceID:        j.DeviceID,
		DeviceSerial:    j.DeviceSerial,
		IdentitySPKI:    id,
		PayloadSPKI:     pl,
		FirmwareVersion: j.FirmwareVersion,
		AttestationKey:  ak,
	}, nil
}

// Validate checks e as ParseEnrollments checks a record.
func (e Enrollment) Validate() error {
	_, err := newEnrollment(0, enroll.Record{
		DeviceID:        e.DeviceID,
		DeviceSerial:    e.DeviceSerial,
		IdentityKey:     base64.StdEncoding.EncodeToString(e.IdentitySPKI),
		PayloadKey:      base64.StdEncoding.EncodeToString(e.PayloadSPKI),
		FirmwareVersion: e.FirmwareVersion,
	})
	if err == nil && e.AttestationKey != nil {
		_, err = enroll.ParseAttestationPublic(e.AttestationKey)
	}
	return err
}

func decodeKey(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	if len(s) > maxSPKI {
		return nil, fmt.Errorf("%d characters, limit %d", len(s), maxSPKI)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("not standard base64")
	}
	return b, nil
}

func parseIdentityKey(spki []byte) (*ecdsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, fmt.Errorf("not a DER SubjectPublicKeyInfo: %w", err)
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 key")
	}
	return ek, nil
}

func parsePayloadKey(spki []byte) (*ecdh.PublicKey, error) {
	ek, err := parseIdentityKey(spki)
	if err != nil {
		return nil, err
	}
	k, err := ek.ECDH()
	if err != nil {
		return nil, fmt.Errorf("not a P-256 key-agreement key: %w", err)
	}
	return k, nil
}

// ImportOutcome is what importing one record of a file did: Result when
// Err is nil, else why it was refused (the parser's reason, or the
// inventory's).
type ImportOutcome struct {
	Item   EnrollmentItem
	Result ImportResult
	Err    error
}

// ImportEnrollments imports every valid item in order, each on its own
// (a refused record does not stop the others), and audits by actor each
// device added or updated (device.import) and each record the inventory
// refused, by the parser or the inventory (device.import_refused). The error is a failure to audit: the
// outcomes up to it are returned with it.
func ImportEnrollments(ctx context.Context, st Store, actor string, items []EnrollmentItem) ([]ImportOutcome, error) {
	out := make([]ImportOutcome, 0, len(items))
	for _, it := range items {
		o := ImportOutcome{Item: it, Err: it.Err}
		if it.Err == nil {
			o.Result, o.Err = st.ImportDevice(ctx, it.Enrollment)
		}
		out = append(out, o)
		var rec AuditRecord
		switch {
		case o.Err != nil:
			rec = AuditRecord{Actor: actor, Event: "device.import_refused", DeviceID: it.DeviceID, Detail: o.Err.Error()}
		case o.Result != ImportUnchanged:
			rec = AuditRecord{Actor: actor, Event: "device.import", DeviceID: it.DeviceID, Detail: o.Result.String() + " firmware " + it.Enrollment.FirmwareVersion}
		default:
			continue
		}
		if err := st.Audit(ctx, rec); err != nil {
			return out, err
		}
	}
	return out, nil
}
