package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zmonitor/firmware/internal/central/store"
)

func cmdDevicesImport(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	fs := newCommand("devices import", &f)
	if err := parse(fs, args, 1, -1); err != nil {
		return err
	}
	st, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	return importFiles(ctx, st, fs.Args(), stdout)
}

// importFiles imports every record of every file, reporting one line per
// record; it fails (after importing the good ones) if any was refused.
func importFiles(ctx context.Context, st store.Store, files []string, stdout io.Writer) error {
	var added, unchanged, updated, refused int
	for _, name := range files {
		b, err := readLimited(name, store.MaxEnrollmentInput)
		if err != nil {
			return fmt.Errorf("devices import: %w", err)
		}
		items, err := store.ParseEnrollments(b)
		if err != nil {
			fmt.Fprintf(stdout, "%s: refused: %v\n", name, err)
			refused++
			continue
		}
		outs, err := store.ImportEnrollments(ctx, st, cliActor, items)
		for _, o := range outs {
			id := o.Item.DeviceID
			if id == "" {
				id = "?"
			}
			if o.Err != nil {
				fmt.Fprintf(stdout, "%s #%d %s: refused: %v\n", name, o.Item.Index, id, o.Err)
				refused++
				continue
			}
			fmt.Fprintf(stdout, "%s #%d %s: %s\n", name, o.Item.Index, id, o.Result)
			switch o.Result {
			case store.ImportAdded:
				added++
			case store.ImportUpdated:
				updated++
			default:
				unchanged++
			}
		}
		if err != nil {
			return fmt.Errorf("devices import: audit: %w", err)
		}
	}
	fmt.Fprintf(stdout, "%d added, %d updated, %d unchanged, %d refused\n", added, updated, unchanged, refused)
	if refused > 0 {
		return fmt.Errorf("devices import: %d record(s) refused", refused)
	}
	return nil
}

func readLimited(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, limit)
	}
	return b, nil
}

func cmdDevicesList(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	c := newCommand("devices list", &f)
	asJSON := c.Bool("json", false, "one JSON object per line instead of a table")
	return withStore(ctx, c, &f, args, 0, 0, func(st store.Store) error {
		ds, err := st.Devices(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			for _, d := range ds {
				r := deviceRecord{ID: d.ID, Serial: d.Serial, FirmwareVersion: d.FirmwareVersion, Label: d.Label, ImportedAt: d.ImportedAt,
					IdentityKey: keyFingerprint(d.IdentitySPKI), PayloadKey: keyFingerprint(d.PayloadSPKI)}
				if d.Revoked() {
					t := d.RevokedAt
					r.RevokedAt = &t
				}
				if err := enc.Encode(r); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DEVICE\tSERIAL\tFIRMWARE\tLABEL\tSTATUS\tIMPORTED")
		for _, d := range ds {
			status := "active"
			if d.Revoked() {
				status = "revoked " + d.RevokedAt.Format(time.RFC3339)
			} else if !d.DecommissionedAt.IsZero() {
				status = "decommissioned " + d.DecommissionedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Serial, d.FirmwareVersion, d.Label, status, d.ImportedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	})
}

func cmdDevicesRevoke(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	fs := newCommand("devices revoke", &f)
	return withStore(ctx, fs, &f, args, 1, 1, func(st store.Store) error {
		id := fs.Arg(0)
		if err := st.RevokeDevice(ctx, id); err != nil {
			return err
		}
		if err := st.Audit(ctx, store.AuditRecord{Actor: cliActor, Event: "device.revoke", DeviceID: id}); err != nil {
			return err
		}
		// Its certificates too, so that the CRL lists them and the
		// monitoring server refuses the device. Run again after an
		// interruption, it revokes the rest.
		n, err := store.RevokeDeviceCertificates(ctx, st, cliActor, id, "device revoked")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "device %s revoked, and %d certificate(s) of it\n", id, n)
		return nil
	})
}

// cmdDevicesDecommission takes a device out of service: its certificates
// are revoked (cessation of operation), and the EST server tells the
// device at its next check-in to wipe its provisioning (docs/lifecycle.md,
// Decommissioning). The device stays in the inventory, enrolled: a new
// pairing brings it back.
func cmdDevicesDecommission(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	fs := newCommand("devices decommission", &f)
	return withStore(ctx, fs, &f, args, 1, 1, func(st store.Store) error {
		id := fs.Arg(0)
		at, err := st.DecommissionDevice(ctx, id)
		if err != nil {
			return err
		}
		if err := st.Audit(ctx, store.AuditRecord{Actor: cliActor, Event: "device.decommissioned", DeviceID: id,
			Detail: "at=" + at.UTC().Format(time.RFC3339) + "; the device is told to wipe its provisioning at its next EST request"}); err != nil {
			return err
		}
		n, err := store.RevokeDeviceCertificates(ctx, st, cliActor, id, "device decommissioned")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "device %s decommissioned, and %d certificate(s) of it revoked; it wipes its provisioning at its next check-in\n", id, n)
		return nil
	})
}

func cmdDevicesLabel(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	fs := newCommand("devices label", &f)
	return withStore(ctx, fs, &f, args, 2, 2, func(st store.Store) error {
		id, label := fs.Arg(0), fs.Arg(1)
		if err := st.SetDeviceLabel(ctx, id, label); err != nil {
			return err
		}
		if err := st.Audit(ctx, store.AuditRecord{Actor: cliActor, Event: "device.label", DeviceID: id, Detail: label}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "device %s labelled %q\n", id, label)
		return nil
	})
}

// cmdDevicesReplace gives an enrolled device the keys of a new enrollment
// record (its TPM or board was replaced): explicit, with a reason, audited.
func cmdDevicesReplace(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	fs := newCommand("devices replace", &f)
	reason := fs.String("reason", "", "why the keys changed, e.g. \"TPM replaced, work order 4711\" (required, audited)")
	if err := parse(fs, args, 1, 1); err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		return fmt.Errorf("%w: devices replace: --reason is required (it is kept in the audit trail)", errUsage)
	}
	b, err := readLimited(fs.Arg(0), store.MaxEnrollmentInput)
	if err != nil {
		return fmt.Errorf("devices replace: %w", err)
	}
	items, err := store.ParseEnrollments(b)
	if err != nil {
		return fmt.Errorf("devices replace: %w", err)
	}
	if len(items) != 1 {
		return fmt.Errorf("devices replace: %s has %d records: give the one new record of the device", fs.Arg(0), len(items))
	}
	if items[0].Err != nil {
		return fmt.Errorf("devices replace: %w", items[0].Err)
	}
	st, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	e := items[0].Enrollment
	r, err := st.ReplaceDevice(ctx, e, *reason)
	if err != nil {
		if aerr := st.Audit(ctx, store.AuditRecord{Actor: cliActor, Event: "device.replace_refused", DeviceID: e.DeviceID, Detail: err.Error()}); aerr != nil {
			return errors.Join(err, aerr)
		}
		return err
	}
	wasRevoked := ""
	if r.Old.Revoked() {
		wasRevoked = " (was revoked " + r.Old.RevokedAt.Format(time.RFC3339) + ")"
	}
	detail := fmt.Sprintf("reason=%q old identity %s serial %s%s; new identity %s serial %s firmware %s; %d certificate(s) revoked",
		strings.TrimSpace(*reason), keyFingerprint(r.Old.IdentitySPKI), r.Old.Serial, wasRevoked, keyFingerprint(r.New.IdentitySPKI), r.New.Serial, r.New.FirmwareVersion, len(r.RevokedCertificates))
	if err := st.Audit(ctx, store.AuditRecord{Actor: cliActor, Event: "device.replace", DeviceID: e.DeviceID, Detail: detail}); err != nil {
		return err
	}
	for _, serial := range r.RevokedCertificates {
		if err := st.Audit(ctx, store.AuditRecord{Actor: cliActor, Event: "certificate.revoked", DeviceID: e.DeviceID, Detail: "serial=" + serial + " reason=" + store.ReasonDeviceReplaced.String()}); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "device %s replaced%s: identity key %s -> %s, serial %s -> %s; %d certificate(s) revoked; the old keys are kept and refused from now on\n",
		e.DeviceID, wasRevoked, keyFingerprint(r.Old.IdentitySPKI), keyFingerprint(r.New.IdentitySPKI), r.Old.Serial, r.New.Serial, len(r.RevokedCertificates))
	return nil
}

// keyFingerprint is the start of the SHA-256 of a DER SPKI, in hex.
func keyFingerprint(spki []byte) string {
	h := sha256.Sum256(spki)
	return "sha256:" + hex.EncodeToString(h[:8])
}

// deviceRecord is one line of devices list --json.
type deviceRecord struct {
	ID              string     `json:"deviceId"`
	Serial          string     `json:"deviceSerial"`
	FirmwareVersion string     `json:"firmwareVersion"`
	Label           string     `json:"label,omitempty"`
	IdentityKey     string     `json:"identityKey"` // fingerprint
	PayloadKey      string     `json:"payloadKey"`  // fingerprint
	ImportedAt      time.Time  `json:"importedAt"`
	RevokedAt       *time.Time `json:"revokedAt,omitempty"`
}
