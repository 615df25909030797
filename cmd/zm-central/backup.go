package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/zmonitor/firmware/internal/central/store"
)

// cmdBackup writes a consistent copy of the SQLite database while serve
// may be running.
func cmdBackup(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	fs := newCommand("backup", &f)
	return withStore(ctx, fs, &f, args, 1, 1, func(st store.Store) error {
		out := fs.Arg(0)
		// Recorded first, so the backup holds its own record.
		if err := st.Audit(ctx, store.AuditRecord{Actor: cliActor, Event: "central.backup", Detail: "to " + out}); err != nil {
			return err
		}
		if err := store.Backup(ctx, st, out); err != nil {
			if aerr := st.Audit(ctx, store.AuditRecord{Actor: cliActor, Event: "central.backup_failed", Detail: err.Error()}); aerr != nil {
				return errors.Join(err, aerr)
			}
			if errors.Is(err, store.ErrBackupUnsupported) {
				return fmt.Errorf("backup: %w (docs/central-station.md, Backup and restore)", err)
			}
			return err
		}
		info, err := store.CheckBackup(ctx, out)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "backup written to %s (mode 0600): schema %d, %d devices, %d audit records; it was checked\n", out, info.SchemaVersion, info.Devices, info.AuditRecords)
		return nil
	})
}

// cmdRestore replaces the SQLite database with a checked backup.
func cmdRestore(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	fs := newCommand("restore", &f)
	force := fs.Bool("force", false, "replace an existing database (everything recorded since the backup is lost)")
	if err := parse(fs, args, 1, 1); err != nil {
		return err
	}
	dsn := f.dsn()
	if !strings.HasPrefix(dsn, "sqlite:") {
		return fmt.Errorf("restore: %w", store.ErrBackupUnsupported)
	}
	if _, err := os.Stat(strings.TrimPrefix(dsn, "sqlite:")); err == nil && !*force {
		return fmt.Errorf("%w: restore: %s exists: restoring replaces it and loses everything recorded since the backup; stop zm-central serve, then give --force", errUsage, strings.TrimPrefix(dsn, "sqlite:"))
	}
	info, err := store.Restore(ctx, fs.Arg(0), dsn)
	if err != nil {
		return err
	}
	st, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Audit(ctx, store.AuditRecord{Actor: cliActor, Event: "central.restore", Detail: fmt.Sprintf("from %s: %d devices, %d audit records", fs.Arg(0), info.Devices, info.AuditRecords)}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s from %s: %d devices, %d audit records\n", strings.TrimPrefix(dsn, "sqlite:"), fs.Arg(0), info.Devices, info.AuditRecords)
	return nil
}
