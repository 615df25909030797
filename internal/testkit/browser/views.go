package browser

import (
	"fmt"
	"image"
	"math/rand/v2"
	"strings"
)

// View is a named Scene.
type View struct {
	Name  string
	Scene Scene
}

// CameraViews returns the ways the tests show a screen to the camera at
// width×height: head-on, in perspective, blurred, under glare, small in the
// frame, and all of these at once. Blur scales with the frame's height, so a
// view means the same at 640×480 and 1280×720.
func CameraViews(width, height int) []View {
	k := float64(height) / 720
	base := Scene{Width: width, Height: height, Size: 0.55, CenterX: 0.5, CenterY: 0.5, Noise: 2, Seed: 1}
	with := func(name string, f func(*Scene)) View {
		s := base
		f(&s)
		return View{Name: fmt.Sprintf("%s-%dx%d", name, width, height), Scene: s}
	}
	return []View{
		with("plain", func(s *Scene) {}),
		with("perspective", func(s *Scene) { s.Yaw, s.Pitch, s.Roll = 28, -18, 9; s.CenterX = 0.45 }),
		with("blur", func(s *Scene) { s.Blur = 1.2 * k }),
		with("glare", func(s *Scene) { s.Glare, s.GlareX, s.GlareY, s.GlareRadius = 0.6, 0.35, 0.4, 0.22 }),
		with("small", func(s *Scene) { s.Size = 0.34; s.CenterX, s.CenterY = 0.62, 0.42 }),
		with("all", func(s *Scene) {
			s.Size, s.CenterX, s.CenterY = 0.45, 0.55, 0.48
			s.Yaw, s.Pitch, s.Roll = -20, 14, -7
			s.Blur = 1.0 * k
			s.Glare, s.GlareX, s.GlareY, s.GlareRadius = 0.4, 0.6, 0.3, 0.2
			s.Noise = 4
		}),
	}
}

// RandomScene draws a hand-held camera's view at width×height: the screen
// fills 30–75% of the frame's height, off centre, turned up to ±20° in the
// image plane and ±30°/±22° away from the camera, with up to 1.6 pixels
// (at 720 lines) of blur, a glare spot on two frames in five, and sensor
// noise. The benchmark feeds many of these to each decoder.
func RandomScene(rng *rand.Rand, width, height int) Scene {
	u := func(lo, hi float64) float64 { return lo + rng.Float64()*(hi-lo) }
	s := Scene{
		Width: width, Height: height,
		Size:    u(0.30, 0.75),
		CenterX: u(0.38, 0.62), CenterY: u(0.40, 0.60),
		Roll: u(-20, 20), Yaw: u(-30, 30), Pitch: u(-22, 22),
		Blur:  u(0, 1.6) * float64(height) / 720,
		Noise: u(2, 6),
		Seed:  rng.Uint64(),
	}
	if rng.Float64() < 0.4 {
		s.Glare, s.GlareX, s.GlareY, s.GlareRadius = u(0.2, 0.7), u(0.1, 0.9), u(0.1, 0.9), u(0.1, 0.3)
	}
	return s
}

// WriteHandheldVideo writes to path a Y4M the fake camera plays: screen as
// a hand-held tablet sees it at 1280×720 (the "all" view: in perspective,
// blurred, a glare spot, sensor noise), two frames that differ only in
// their noise, at 15 frames a second. The demo and the end-to-end test
// point the tablet's camera at the board's screendump with it.
func WriteHandheldVideo(screen image.Image, path string) error {
	const width, height = 1280, 720
	var scene Scene
	found := false
	for _, v := range CameraViews(width, height) {
		if strings.HasPrefix(v.Name, "all-") {
			scene, found = v.Scene, true
		}
	}
	if !found {
		return fmt.Errorf("handheld video: no %q camera view", "all")
	}
	var frames []image.Image
	for seed := range uint64(2) {
		s := scene
		s.Seed = seed
		img, err := s.Render(screen)
		if err != nil {
			return fmt.Errorf("handheld video: frame %d: %w", seed, err)
		}
		frames = append(frames, img)
	}
	return WriteY4MFile(path, 15, frames...)
}
