package browser

import (
	"context"
	"fmt"

	"github.com/chromedp/chromedp"
)

// Viewport is a screen size the web app is laid out for.
type Viewport struct {
	Name          string
	Width, Height int64
}

// TabletPortrait is a 10" tablet held upright (768×1024 CSS pixels).
func TabletPortrait() Viewport { return Viewport{Name: "portrait", Width: 768, Height: 1024} }

// TabletLandscape is a tablet held sideways (1280×800 CSS pixels).
func TabletLandscape() Viewport { return Viewport{Name: "landscape", Width: 1280, Height: 800} }

// TabletViewports are the sizes every page is checked and pictured at.
func TabletViewports() []Viewport { return []Viewport{TabletPortrait(), TabletLandscape()} }

// Emulate makes the tab a touch tablet of the viewport's size (device scale
// 1, mobile layout rules, touch events, the matching orientation).
func Emulate(ctx context.Context, vp Viewport) error {
	orient := chromedp.EmulatePortrait
	if vp.Width > vp.Height {
		orient = chromedp.EmulateLandscape
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(vp.Width, vp.Height, chromedp.EmulateScale(1), chromedp.EmulateMobile, chromedp.EmulateTouch, orient)); err != nil {
		return fmt.Errorf("emulate %s %dx%d: %w", vp.Name, vp.Width, vp.Height, err)
	}
	return nil
}

// Screenshot shows the tab at the viewport's size and returns a PNG of what
// the tablet's screen shows (the viewport, not the whole scrollable page).
func Screenshot(ctx context.Context, vp Viewport) ([]byte, error) {
	if err := Emulate(ctx, vp); err != nil {
		return nil, err
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return nil, fmt.Errorf("screenshot %s: %w", vp.Name, err)
	}
	return png, nil
}
