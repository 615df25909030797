// Package screen draws one screen per provisioning state for the monitor's
// panel: the pairing QR with its code and countdown, progress, success and
// failure with the action the technician must take.
//
// A Renderer turns a View into a Frame (an *image.RGBA plus the boxes of
// everything drawn, so tests can prove nothing is clipped). A Screen wraps a
// periph display.Drawer: it pushes the whole frame when the screen changes
// and only the countdown's rectangle when the countdown ticks.
//
// Fonts are Go Regular and Go Bold compiled into the binary (golang.org/x/
// image/font/gofont), rasterized by github.com/golang/freetype/truetype, the
// font stack github.com/fogleman/gg links anyway; the device has no font
// files. Layouts are computed from the panel size; 240×240, 320×240 and
// 480×320 are the sizes tested, anything smaller than 240×240 is refused.
// See docs/screens.md for the images and the rules.
package screen
