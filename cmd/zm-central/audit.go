package main

import (
	"context"
	"encoding/json"
	"io"

	"github.com/zmonitor/firmware/internal/central/store"
)

func cmdAuditExport(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	c := newCommand("audit export", &f)
	return withStore(ctx, c, &f, args, 0, 0, func(st store.Store) error {
		enc := json.NewEncoder(stdout)
		return st.ExportAudit(ctx, func(r store.AuditRecord) error { return enc.Encode(r) })
	})
}
