package screen

import (
	"errors"
	"fmt"
	"image"

	"periph.io/x/conn/v3/display"
)

// Screen shows views on a panel. It keeps the last frame: a view that
// differs from the previous one only in its countdown (View.Remaining, or
// View.Locked while it stays non-zero) redraws and pushes only the
// countdown's rectangle; any other change pushes the whole frame. It is not
// safe for concurrent use: the engine's goroutine owns it.
type Screen struct {
	d     display.Drawer
	r     *Renderer
	size  image.Point
	last  View
	frame *Frame
}

// New returns a Screen drawing on d, which must be at least 240×240.
func New(d display.Drawer) (*Screen, error) {
	if err := checkDisplay(d); err != nil {
		return nil, err
	}
	r, err := NewRenderer()
	if err != nil {
		return nil, err
	}
	return NewWithRenderer(d, r)
}

// NewWithRenderer returns a Screen drawing on d with r, whose fonts were
// parsed, and frames perhaps rendered, before the display was open. The
// Screen owns r from then on. A view r rendered last at d's size is shown
// without being rendered again.
func NewWithRenderer(d display.Drawer, r *Renderer) (*Screen, error) {
	if r == nil {
		return nil, errors.New("screen: no renderer")
	}
	if err := checkDisplay(d); err != nil {
		return nil, err
	}
	return &Screen{d: d, r: r, size: d.Bounds().Size()}, nil
}

// checkDisplay refuses a display smaller than the screens' layout.
func checkDisplay(d display.Drawer) error {
	b := d.Bounds()
	if b.Dx() < MinWidth || b.Dy() < MinHeight {
		return fmt.Errorf("%w: display %s is %d×%d", ErrTooSmall, d, b.Dx(), b.Dy())
	}
	return nil
}

// Show draws v: the whole frame when the screen changed, only the
// countdown when that is all that changed, nothing when the visible text is
// the same.
func (s *Screen) Show(v View) error {
	if s.frame != nil && sameScreen(s.last, v) {
		rect := s.r.Tick(s.frame, v)
		s.last = v
		if rect.Empty() {
			return nil
		}
		if err := s.d.Draw(rect.Add(s.d.Bounds().Min), s.frame.Img, rect.Min); err != nil {
			s.frame = nil // push everything next time
			return fmt.Errorf("screen: push countdown: %w", err)
		}
		return nil
	}
	f, err := s.r.Render(v, s.size.X, s.size.Y)
	if err != nil {
		return err
	}
	// A failed push leaves no frame, so the next Show pushes everything.
	s.frame = nil
	if err := s.d.Draw(s.d.Bounds(), f.Img, image.Point{}); err != nil {
		return fmt.Errorf("screen: push %s frame: %w", v.State, err)
	}
	s.frame, s.last = f, v
	return nil
}

// Frame returns the frame last pushed, nil before the first Show.
func (s *Screen) Frame() *Frame { return s.frame }
