// Package rgb565 is the 16-bit RGB 5-6-5 pixel format shared by the SPI
// panels (ST7789, ILI9341: big-endian on the wire) and 16-bit Linux
// framebuffers (little-endian in memory): a color.Color and color.Model, and
// a fast encoder from image.Image.
//
// Colours are taken premultiplied, that is composited over black, as the
// hardware has no alpha.
package rgb565
