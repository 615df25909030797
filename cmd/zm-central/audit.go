package main

import (
	"context"
	"encoding/json"
	"io"

	"github.com/zmonitor/firmware/internal/central/store"
)

func cmdAuditExport(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	fs := newFlagSet("audit export", &f)
	if err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	st, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	enc := json.NewEncoder(stdout)
	return st.ExportAudit(ctx, func(r store.AuditRecord) error { return enc.Encode(r) })
}
