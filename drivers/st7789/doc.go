// Package st7789 drives ST7789 SPI TFT panels (and ILI9341 panels, whose
// command set for what this driver does is the same) in 16-bit RGB565 mode.
//
// The driver receives an spi.Port and the DC (data/command) and optional
// RST pins; it never looks hardware up by name (the board profile does).
// Options are validated before the bus is touched. The power-up sequence is
// a table (InitSequence) so it can be reviewed against the datasheet and is
// tested byte for byte.
//
// Draw sends only the rectangle it is given: CASET/RASET set the window,
// RAMWR starts the memory write and the pixels follow as big-endian RGB565,
// in transfers no larger than the connection's conn.Limits.MaxTxSize
// (spidev refuses larger ones; 4096 bytes when the connection does not say).
// A full 240×240 frame is 115,200 pixel bytes plus 11 command bytes.
package st7789
