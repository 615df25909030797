package screen

// Warm renders v off-screen, without touching the panel, so that the fonts'
// faces and glyphs it needs are made before the frame that shows it. A cold
// first frame costs about ten times a warm one (go test -bench Cold): under
// QEMU's emulated CPU that is ~0.1 s, so the firmware warms the boot screen
// while the TPM loads its keys, and the pairing screen after boot. Like
// Show, it must be called from the goroutine that owns the Screen.
func (s *Screen) Warm(v View) error {
	_, err := s.r.Render(v, s.size.X, s.size.Y)
	return err
}
