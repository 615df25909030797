// Command zm-pair is the technician's tablet client (DOC-PROC-001 step 3):
// it reads the Z Monitor's pairing QR code from a camera picture or a
// screenshot, or takes a typed pairing code, asks the Central Station to
// provision the device, and shows the progress and a clear outcome. See
// docs/zm-pair.md.
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
