package browser

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
)

// Scene is how a tablet's camera sees the monitor's screen: where the screen
// sits in the frame and how large, how it is turned, how sharp, with what
// reflection and sensor noise. Render turns a screenshot of the board's
// screen (a QMP screendump, or screen.Renderer's frame) into the camera's
// frame.
//
// The geometry is a pinhole camera looking at the flat panel (the
// screenshot surrounded by a dark bezel) from a distance; the focal length
// is the frame's height (a ~53° vertical field of view, a tablet's rear
// camera). Photometry: the panel's black is not black and its white is not
// full scale, a specular glare adds light over part of the panel, the whole
// frame is blurred (focus, motion) and then gets sensor noise.
type Scene struct {
	// Width and Height of the camera frame in pixels (even: 4:2:0).
	Width, Height int
	// Size is the width of the screen (bezel excluded) as a fraction of the
	// frame's height, seen head-on. 0.5 on a 1280×720 frame draws a
	// 240-pixel panel 360 pixels wide (1.5 frame pixels per panel pixel).
	Size float64
	// CenterX, CenterY place the screen's centre, as fractions of the
	// frame's width and height (0.5, 0.5 is the middle).
	CenterX, CenterY float64
	// Roll turns the screen in the image plane; Yaw and Pitch turn it away
	// from the camera about its vertical and horizontal axes (perspective).
	// Degrees.
	Roll, Yaw, Pitch float64
	// Blur is the Gaussian blur's sigma in frame pixels (0: sharp).
	Blur float64
	// Glare is the strength of a specular reflection (0: none, 1: the
	// centre of the spot is white), centred at GlareX, GlareY (fractions
	// of the screen, 0–1) with radius GlareRadius (fraction of the
	// screen's width).
	Glare, GlareX, GlareY, GlareRadius float64
	// Noise is the sensor noise's standard deviation in 8-bit levels.
	Noise float64
	// Seed makes the noise and the background repeatable.
	Seed uint64
}

// Validate reports a scene that cannot be rendered or would show no screen.
func (s Scene) Validate() error {
	switch {
	case s.Width <= 0 || s.Height <= 0 || s.Width%2 != 0 || s.Height%2 != 0:
		return fmt.Errorf("scene: frame %dx%d: want positive even sizes", s.Width, s.Height)
	case s.Size <= 0 || s.Size > 4:
		return fmt.Errorf("scene: size %.3g: want (0, 4] of the frame's height", s.Size)
	case math.Abs(s.Yaw) >= 75 || math.Abs(s.Pitch) >= 75:
		return fmt.Errorf("scene: yaw %.3g°, pitch %.3g°: want less than 75° (the panel would be edge-on)", s.Yaw, s.Pitch)
	case s.Blur < 0 || s.Blur > 20:
		return fmt.Errorf("scene: blur %.3g: want 0–20 pixels", s.Blur)
	case s.Glare < 0 || s.Glare > 1:
		return fmt.Errorf("scene: glare %.3g: want 0–1", s.Glare)
	case s.Noise < 0 || s.Noise > 64:
		return fmt.Errorf("scene: noise %.3g: want 0–64 levels", s.Noise)
	}
	return nil
}

// Panel photometry: what the camera makes of the panel's black and white,
// and the bezel around it.
const (
	panelBlack = 28.0
	panelWhite = 232.0
	bezelRatio = 0.12 // bezel width on each side, as a fraction of the screen's width
)

var bezelColor = color.RGBA{34, 36, 40, 255}

// Render draws the camera's frame of screen.
func (s Scene) Render(screen image.Image) (*image.RGBA, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	sb := screen.Bounds()
	if sb.Dx() < 8 || sb.Dy() < 8 {
		return nil, fmt.Errorf("scene: screenshot %dx%d is too small", sb.Dx(), sb.Dy())
	}
	src := toRGBA(screen)
	sw, sh := float64(sb.Dx()), float64(sb.Dy())
	bez := bezelRatio * sw

	toFrame, err := s.homography(sw, sh, bez)
	if err != nil {
		return nil, err
	}
	toPanel, ok := toFrame.inverse()
	if !ok {
		return nil, fmt.Errorf("scene: the panel projects to a line")
	}

	rng := rand.New(rand.NewPCG(s.Seed, 0x5ce7e))
	out := image.NewRGBA(image.Rect(0, 0, s.Width, s.Height))
	bg := newBackground(rng, s.Width, s.Height)
	// Only pixels near the panel are supersampled and mapped; the rest is
	// the room.
	near := panelBounds(toFrame, sw+2*bez, sh+2*bez).Inset(-2).Intersect(out.Rect)
	for y := 0; y < s.Height; y++ {
		for x := 0; x < s.Width; x++ {
			var c [3]float64
			if (image.Point{x, y}).In(near) {
				c = s.panelPixel(x, y, toPanel, src, bg, sw, sh, bez)
			} else {
				c = bg.at(x, y)
			}
			i := out.PixOffset(x, y)
			out.Pix[i] = clamp8(c[0])
			out.Pix[i+1] = clamp8(c[1])
			out.Pix[i+2] = clamp8(c[2])
			out.Pix[i+3] = 255
		}
	}
	if s.Blur > 0 {
		// The room is smooth already: blurring it would change nothing
		// a decoder sees, so only the panel and a margin are blurred.
		margin := int(math.Ceil(3*s.Blur)) + 1
		gaussianBlur(out, near.Inset(-margin).Intersect(out.Rect), s.Blur)
	}
	if s.Noise > 0 {
		addNoise(out, rng, s.Noise)
	}
	return out, nil
}

// panelPixel is frame pixel (x, y) near the panel: 2×2 samples, so that a
// small, turned panel does not alias.
func (s Scene) panelPixel(x, y int, toPanel mat3, src *image.RGBA, bg *background, sw, sh, bez float64) [3]float64 {
	const scale = (panelWhite - panelBlack) / 255
	glareR := s.GlareRadius * sw
	var acc [3]float64
	for _, o := range [4][2]float64{{0.25, 0.25}, {0.75, 0.25}, {0.25, 0.75}, {0.75, 0.75}} {
		px, py, in := toPanel.apply(float64(x)+o[0], float64(y)+o[1])
		var c [3]float64
		switch {
		case !in:
			c = bg.at(x, y)
		case px >= bez && px < bez+sw && py >= bez && py < bez+sh:
			r, g, b := bilinear(src, px-bez, py-bez)
			c = [3]float64{panelBlack + r*scale, panelBlack + g*scale, panelBlack + b*scale}
			if s.Glare > 0 && glareR > 0 {
				dx, dy := px-bez-s.GlareX*sw, py-bez-s.GlareY*sh
				gl := 255 * s.Glare * math.Exp(-(dx*dx+dy*dy)/(2*glareR*glareR))
				c = [3]float64{c[0] + gl, c[1] + gl, c[2] + gl}
			}
		case px >= 0 && px < sw+2*bez && py >= 0 && py < sh+2*bez:
			c = [3]float64{float64(bezelColor.R), float64(bezelColor.G), float64(bezelColor.B)}
		default:
			c = bg.at(x, y)
		}
		acc[0] += c[0]
		acc[1] += c[1]
		acc[2] += c[2]
	}
	return [3]float64{acc[0] / 4, acc[1] / 4, acc[2] / 4}
}

// panelBounds is the frame rectangle holding the panel (pw×ph, bezel
// included) mapped through toFrame.
func panelBounds(toFrame mat3, pw, ph float64) image.Rectangle {
	minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, c := range [4][2]float64{{0, 0}, {pw, 0}, {pw, ph}, {0, ph}} {
		x, y, _ := toFrame.apply(c[0], c[1])
		minX, minY, maxX, maxY = math.Min(minX, x), math.Min(minY, y), math.Max(maxX, x), math.Max(maxY, y)
	}
	// The frame is at most a few thousand pixels: clamp before converting.
	clampI := func(v float64) int { return int(math.Max(-1e6, math.Min(1e6, v))) }
	return image.Rect(clampI(math.Floor(minX)), clampI(math.Floor(minY)), clampI(math.Ceil(maxX)), clampI(math.Ceil(maxY)))
}

// ScreenCorners returns where the screen's corners (bezel excluded) land in
// the frame: top-left, top-right, bottom-right, bottom-left. Tests use it to
// know the panel's size in the frame.
func (s Scene) ScreenCorners(screenW, screenH int) ([4]image.Point, error) {
	var pts [4]image.Point
	if err := s.Validate(); err != nil {
		return pts, err
	}
	sw, sh := float64(screenW), float64(screenH)
	bez := bezelRatio * sw
	h, err := s.homography(sw, sh, bez)
	if err != nil {
		return pts, err
	}
	for i, c := range [4][2]float64{{bez, bez}, {bez + sw, bez}, {bez + sw, bez + sh}, {bez, bez + sh}} {
		x, y, _ := h.apply(c[0], c[1])
		pts[i] = image.Pt(int(math.Round(x)), int(math.Round(y)))
	}
	return pts, nil
}

// homography maps panel coordinates (the screenshot with its bezel, origin
// at the bezel's top-left) to frame pixels.
func (s Scene) homography(sw, sh, bez float64) (mat3, error) {
	f := float64(s.Height) // focal length in pixels
	pw, ph := sw+2*bez, sh+2*bez
	// Distance at which the screen (sw wide) spans Size×Height pixels head-on.
	d := f * sw / (s.Size * float64(s.Height))
	cx := (s.CenterX - 0.5) * float64(s.Width) * d / f
	cy := (s.CenterY - 0.5) * float64(s.Height) * d / f
	rot := rotation(s.Roll, s.Yaw, s.Pitch)
	var src, dst [4][2]float64
	for i, c := range [4][2]float64{{0, 0}, {pw, 0}, {pw, ph}, {0, ph}} {
		p := rot.mulVec([3]float64{c[0] - pw/2, c[1] - ph/2, 0})
		z := p[2] + d
		if z <= f/20 {
			return mat3{}, fmt.Errorf("scene: the panel reaches behind the camera (size %.3g too large for yaw %.3g°, pitch %.3g°)", s.Size, s.Yaw, s.Pitch)
		}
		src[i] = c
		dst[i] = [2]float64{f*(p[0]+cx)/z + float64(s.Width)/2, f*(p[1]+cy)/z + float64(s.Height)/2}
	}
	return fourPoint(src, dst)
}

// background is a dim, uneven room behind the monitor, so that a decoder
// cannot rely on a flat surround: a brightness that varies smoothly along
// each axis (a sum of a few random waves per axis) on a tinted base. It is
// separable, so each pixel costs two lookups.
type background struct {
	tint [3]float64
	row  []float64 // per y
	col  []float64 // per x
}

func newBackground(rng *rand.Rand, w, h int) *background {
	base := 60 + rng.Float64()*50
	b := &background{tint: [3]float64{0.9 + rng.Float64()*0.2, 0.9 + rng.Float64()*0.2, 0.9 + rng.Float64()*0.2}}
	waves := func(n int, amp float64) []float64 {
		v := make([]float64, n)
		for k := 0; k < 3; k++ {
			a, f, ph := amp*rng.Float64(), 0.5+rng.Float64()*2.5, rng.Float64()*2*math.Pi
			for i := range v {
				v[i] += a * math.Sin(2*math.Pi*f*float64(i)/float64(n)+ph)
			}
		}
		return v
	}
	b.row = waves(h, 20)
	b.col = waves(w, 20)
	for i := range b.row {
		b.row[i] += base - 25*float64(i)/float64(h) // darker towards the floor
	}
	return b
}

func (b *background) at(x, y int) [3]float64 {
	v := b.row[y] + b.col[x]
	return [3]float64{v * b.tint[0], v * b.tint[1], v * b.tint[2]}
}

func toRGBA(img image.Image) *image.RGBA {
	if r, ok := img.(*image.RGBA); ok {
		return r
	}
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			out.Set(x, y, img.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return out
}

// bilinear samples img at (x, y) (pixel centres at +0.5), clamped to its edges.
func bilinear(img *image.RGBA, x, y float64) (r, g, b float64) {
	x, y = x-0.5, y-0.5
	x0, y0 := math.Floor(x), math.Floor(y)
	fx, fy := x-x0, y-y0
	w, h := img.Rect.Dx(), img.Rect.Dy()
	ix0, iy0 := min(max(int(x0), 0), w-1), min(max(int(y0), 0), h-1)
	ix1, iy1 := min(max(int(x0)+1, 0), w-1), min(max(int(y0)+1, 0), h-1)
	p00, p10 := img.Pix[iy0*img.Stride+ix0*4:], img.Pix[iy0*img.Stride+ix1*4:]
	p01, p11 := img.Pix[iy1*img.Stride+ix0*4:], img.Pix[iy1*img.Stride+ix1*4:]
	w00, w10, w01, w11 := (1-fx)*(1-fy), fx*(1-fy), (1-fx)*fy, fx*fy
	r = w00*float64(p00[0]) + w10*float64(p10[0]) + w01*float64(p01[0]) + w11*float64(p11[0])
	g = w00*float64(p00[1]) + w10*float64(p10[1]) + w01*float64(p01[1]) + w11*float64(p11[1])
	b = w00*float64(p00[2]) + w10*float64(p10[2]) + w01*float64(p01[2]) + w11*float64(p11[2])
	return r, g, b
}

func clamp8(v float64) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}

// addNoise adds Gaussian noise of standard deviation sigma (8-bit levels)
// to every channel. The deviates come from a table of 4096 drawn once per
// frame: sensor noise needs no better, and it is ten times cheaper.
func addNoise(img *image.RGBA, rng *rand.Rand, sigma float64) {
	var table [4096]int16
	for i := range table {
		table[i] = int16(math.Round(rng.NormFloat64() * sigma))
	}
	for i := 0; i < len(img.Pix); i += 4 {
		r := rng.Uint64()
		for c := 0; c < 3; c++ {
			v := int(img.Pix[i+c]) + int(table[r>>(c*12)&4095])
			img.Pix[i+c] = uint8(min(max(v, 0), 255))
		}
	}
}

// gaussianBlur blurs the part r of img in place with a separable Gaussian
// of the given sigma, in 16-bit fixed point (pixels outside r count as
// r's edge pixels).
func gaussianBlur(img *image.RGBA, r image.Rectangle, sigma float64) {
	if r.Empty() {
		return
	}
	radius := int(math.Ceil(3 * sigma))
	kf := make([]float64, 2*radius+1)
	var sum float64
	for i := range kf {
		d := float64(i - radius)
		kf[i] = math.Exp(-d * d / (2 * sigma * sigma))
		sum += kf[i]
	}
	k := make([]int32, len(kf))
	for i := range kf {
		k[i] = int32(math.Round(kf[i] / sum * 65536))
	}
	w, h := r.Dx(), r.Dy()
	// Work on a copy of r, 4 bytes per pixel, rows of w pixels.
	a := make([]uint8, w*h*4)
	for y := 0; y < h; y++ {
		copy(a[y*w*4:(y+1)*w*4], img.Pix[img.PixOffset(r.Min.X, r.Min.Y+y):])
	}
	b := make([]uint8, len(a))
	// pass blurs count lines of n pixels, pixels stride bytes apart and
	// lines step bytes apart, from src into dst.
	pass := func(dst, src []uint8, n, stride, count, step int) {
		line := make([]int32, 3*(n+2*radius))
		for l := 0; l < count; l++ {
			base := l * step
			for i := -radius; i < n+radius; i++ {
				p := base + min(max(i, 0), n-1)*stride
				j := 3 * (i + radius)
				line[j], line[j+1], line[j+2] = int32(src[p]), int32(src[p+1]), int32(src[p+2])
			}
			for i := 0; i < n; i++ {
				var cr, cg, cb int32
				win := line[3*i : 3*(i+2*radius+1)]
				for t, kv := range k {
					cr += kv * win[3*t]
					cg += kv * win[3*t+1]
					cb += kv * win[3*t+2]
				}
				o := base + i*stride
				dst[o] = uint8(min(max((cr+1<<15)>>16, 0), 255))
				dst[o+1] = uint8(min(max((cg+1<<15)>>16, 0), 255))
				dst[o+2] = uint8(min(max((cb+1<<15)>>16, 0), 255))
				dst[o+3] = 255
			}
		}
	}
	pass(b, a, w, 4, h, w*4) // rows
	pass(a, b, h, w*4, w, 4) // columns
	for y := 0; y < h; y++ {
		copy(img.Pix[img.PixOffset(r.Min.X, r.Min.Y+y):], a[y*w*4:(y+1)*w*4])
	}
}
