package boot

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/drivers/button"
)

func TestOpeningButtonReportsTheOpenError(t *testing.T) {
	b := startOpening(func() (*button.Dev, error) { return nil, errors.New("no such line") })
	err := b.Run(context.Background(), make(chan button.Event))
	if err == nil || !strings.Contains(err.Error(), "open: no such line") {
		t.Fatalf("Run = %v, want the open error", err)
	}
	b.Halt() // must not block or panic without a device
}

func TestOpeningButtonRunWaitsForTheOpening(t *testing.T) {
	release := make(chan struct{})
	b := startOpening(func() (*button.Dev, error) {
		<-release
		return nil, errors.New("late")
	})
	ran := make(chan error, 1)
	go func() { ran <- b.Run(context.Background(), make(chan button.Event)) }()
	select {
	case err := <-ran:
		t.Fatalf("Run returned %v before the button opened", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	if err := <-ran; err == nil || !strings.Contains(err.Error(), "late") {
		t.Fatalf("Run = %v after the opening", err)
	}
}

func TestOpeningButtonRunEndsWithItsContext(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	b := startOpening(func() (*button.Dev, error) { <-block; return nil, nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Run(ctx, make(chan button.Event)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}
