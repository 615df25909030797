package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/zmonitor/firmware/image/manifest"
)

// Firmware is an entry of the firmware allow-list: a released image of a
// UEFI board, as its manifest describes it (internal/central/attestation
// checks a device's quoted boot against it).
type Firmware struct {
	Authenticode string // SHA-256 Authenticode digest of zmonitor.efi, lowercase hex
	Version      string
	Board        string
	PCR4, PCR7   string // expected SHA-256 values, lowercase hex
	AllowedAt    time.Time
	DeniedAt     time.Time // zero unless withdrawn
}

// Denied reports whether the image was withdrawn.
func (f Firmware) Denied() bool { return !f.DeniedAt.IsZero() }

// FirmwareFromManifest is the allow-list entry of an image manifest
// (image/manifest); a manifest without a "uefi" section (a direct-kernel
// board's) cannot be attested and is refused.
func FirmwareFromManifest(m manifest.Manifest) (Firmware, error) {
	if err := m.Validate(); err != nil {
		return Firmware{}, err
	}
	if m.UEFI == nil {
		return Firmware{}, fmt.Errorf("manifest of firmware %s (%s) has no uefi section: a direct-kernel image measures nothing and cannot be allowed", m.FirmwareVersion, m.Board)
	}
	f := Firmware{Authenticode: m.UEFI.Authenticode, Version: m.FirmwareVersion, Board: m.Board}
	for _, p := range m.UEFI.PCRs {
		switch p.Index {
		case 4:
			f.PCR4 = p.Value
		case 7:
			f.PCR7 = p.Value
		}
	}
	if f.PCR4 == "" || f.PCR7 == "" {
		return Firmware{}, errors.New("manifest's expectedPCRs lack PCR 4 or 7")
	}
	return f, nil
}

// AllowFirmware adds f to the allow-list; allowing an image again lifts
// its denial and records the manifest's values anew.
func (s *sqlStore) AllowFirmware(ctx context.Context, f Firmware) error {
	now := s.nowMicros()
	_, err := s.exec(ctx, `INSERT INTO firmware (authenticode, version, board, pcr4, pcr7, allowed_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (authenticode) DO UPDATE SET version = excluded.version, board = excluded.board, pcr4 = excluded.pcr4,
		pcr7 = excluded.pcr7, allowed_at = excluded.allowed_at, denied_at = NULL`,
		f.Authenticode, f.Version, f.Board, f.PCR4, f.PCR7, now)
	if err != nil {
		return fmt.Errorf("allow firmware %s: %w", f.Authenticode, err)
	}
	return nil
}

// DenyFirmware withdraws an image (idempotent); ErrNotFound if it was
// never allowed.
func (s *sqlStore) DenyFirmware(ctx context.Context, authenticode string) error {
	err := mustAffect(s.exec(ctx, `UPDATE firmware SET denied_at = COALESCE(denied_at, ?) WHERE authenticode = ?`, s.nowMicros(), authenticode))
	if err != nil {
		return fmt.Errorf("deny firmware %s: %w", authenticode, err)
	}
	return nil
}

const firmwareColumns = `authenticode, version, board, pcr4, pcr7, allowed_at, denied_at`

func scanFirmware(r scanner) (Firmware, error) {
	var f Firmware
	var allowed int64
	var denied sql.NullInt64
	if err := r.Scan(&f.Authenticode, &f.Version, &f.Board, &f.PCR4, &f.PCR7, &allowed, &denied); err != nil {
		return Firmware{}, err
	}
	f.AllowedAt, f.DeniedAt = fromMicros(allowed), fromNullMicros(denied)
	return f, nil
}

// FirmwareImage returns the allow-list entry of an image, ErrNotFound if
// there is none.
func (s *sqlStore) FirmwareImage(ctx context.Context, authenticode string) (Firmware, error) {
	f, err := scanFirmware(s.queryRow(ctx, `SELECT `+firmwareColumns+` FROM firmware WHERE authenticode = ?`, authenticode))
	if errors.Is(err, sql.ErrNoRows) {
		return Firmware{}, fmt.Errorf("firmware %s: %w", authenticode, ErrNotFound)
	}
	if err != nil {
		return Firmware{}, fmt.Errorf("firmware %s: %w", authenticode, err)
	}
	return f, nil
}

// FirmwareImages lists the allow-list, denied entries included, oldest
// first.
func (s *sqlStore) FirmwareImages(ctx context.Context) ([]Firmware, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+firmwareColumns+` FROM firmware ORDER BY allowed_at, authenticode`)
	if err != nil {
		return nil, fmt.Errorf("list firmware: %w", err)
	}
	defer rows.Close()
	var out []Firmware
	for rows.Next() {
		f, err := scanFirmware(rows)
		if err != nil {
			return nil, fmt.Errorf("list firmware: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list firmware: %w", err)
	}
	return out, nil
}
