package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/auditlog"
)

// maxAuditExport bounds the file verify-audit reads: a device keeps at
// most 9 closed segments of 1 MiB and its current one (docs/architecture.md).
const maxAuditExport = 64 << 20

// cmdDevicesVerifyAudit verifies a device's exported audit log (the
// console's `audit export`, captured, or the JSON Lines alone) against the
// identity key of its enrollment record: every line's hash, the chain
// across segments, every gap the firmware explained, and every signed
// checkpoint. The outcome is audited either way; a log that does not
// verify exits non-zero with the first problem.
func cmdDevicesVerifyAudit(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	fs := newCommand("devices verify-audit", &f)
	return withStore(ctx, fs, &f, args, 2, 2, func(st store.Store) error {
		id, name := fs.Arg(0), fs.Arg(1)
		d, err := st.Device(ctx, id)
		if err != nil {
			return err
		}
		key, err := d.IdentityKey()
		if err != nil {
			return fmt.Errorf("device %s: identity key: %w", id, err)
		}
		b, err := readLimited(name, maxAuditExport)
		if err != nil {
			return err
		}
		records, err := auditlog.FromCapture(b)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		s, verr := auditlog.VerifyExport(bytes.NewReader(records), key, id)
		if verr == nil && s.Checkpoints == 0 {
			verr = errors.New("no signed checkpoint: nothing in the log is bound to the device's identity key (a device writes one at every boot)")
		}
		rec := store.AuditRecord{Actor: cliActor, Event: "device.audit_verified", DeviceID: id,
			Detail: fmt.Sprintf("records=%d checkpoints=%d last=%s", s.Records, s.Checkpoints, s.LastHash)}
		if verr != nil {
			rec.Event, rec.Detail = "device.audit_verify_failed", fmt.Sprintf("after %d records: %v", s.Records, verr)
		}
		if err := st.Audit(ctx, rec); err != nil {
			return err
		}
		if verr != nil {
			return fmt.Errorf("audit log of %s does NOT verify (after %d good records): %w", id, s.Records, verr)
		}
		fmt.Fprintf(stdout, "audit log of %s verified: %d records, %d signed checkpoints; the last signs record %d (hash %s); last record's hash %s\n",
			id, s.Records, s.Checkpoints, s.Checkpoint.Seq, s.Checkpoint.Hash, s.LastHash)
		fmt.Fprintf(stdout, "records after %d are not yet signed: keep this last hash and compare it with the next export\n", s.Checkpoint.Seq)
		return nil
	})
}
