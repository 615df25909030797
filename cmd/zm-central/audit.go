package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"

	"github.com/zmonitor/firmware/internal/central/store"
)

func cmdAuditExport(ctx context.Context, args []string, stdout io.Writer) error {
	return withStore(ctx, "audit export", args, 0, 0, func(st store.Store, fs *flag.FlagSet) error {
		enc := json.NewEncoder(stdout)
		return st.ExportAudit(ctx, func(r store.AuditRecord) error { return enc.Encode(r) })
	})
}
