// Command zm-central is the reference Central Station: device inventory,
// technicians, device CA and provisioning signer, the tablet API that pushes
// configurations to devices, and the audit trail. See docs/central-station.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
