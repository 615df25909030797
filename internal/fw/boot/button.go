package boot

import (
	"context"
	"fmt"

	"github.com/zmonitor/firmware/board"
	"github.com/zmonitor/firmware/drivers/button"
)

// openingButton is the Enable Provisioning button while it opens in the
// background: periph initialises every registered host driver first, 50 to
// 100 ms under QEMU, and the TPM keys, the data partition and the screen
// need not wait for that. Run waits for the opening; edges between the
// opening and Run wait in the kernel's line event queue, so a press made as
// soon as the screen shows is not lost.
//
// A button that cannot be opened does not stop the firmware: the monitor
// still shows its state, serves the diagnostics console and, if it is
// provisioned, keeps working. Run returns the error; the device logs it and
// records BUTTON_FAILED in the audit log.
type openingButton struct {
	done chan struct{}
	dev  *button.Dev
	err  error
}

// openButton starts opening the profile's button.
func openButton(p board.Profile, trace *bootTrace) *openingButton {
	return startOpening(func() (*button.Dev, error) {
		d, err := board.OpenButton(p)
		trace.mark("button open")
		return d, err
	})
}

func startOpening(open func() (*button.Dev, error)) *openingButton {
	b := &openingButton{done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.dev, b.err = open()
	}()
	return b
}

// Run waits for the button to open and then runs it until ctx ends.
func (b *openingButton) Run(ctx context.Context, out chan<- button.Event) error {
	select {
	case <-b.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if b.err != nil {
		return fmt.Errorf("open: %w", b.err)
	}
	return b.dev.Run(ctx, out)
}

// Halt stops a running Run once the button is open.
func (b *openingButton) Halt() {
	<-b.done
	if b.dev != nil {
		_ = b.dev.Halt()
	}
}
