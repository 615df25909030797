// Package fbdev draws on a Linux framebuffer device (/dev/fb0), the display
// of the qemu-virt board (virtio-gpu through the kernel's fbdev emulation).
//
// Open reads the geometry and pixel format from the kernel
// (FBIOGET_VSCREENINFO, FBIOGET_FSCREENINFO), keeps a copy of the
// framebuffer's visible area and, when asked, switches the virtual console to graphics mode (KDSETMODE
// KD_GRAPHICS on /dev/tty0) so that kernel messages and the text cursor do
// not draw over the picture. Halt and Close put the console back in text
// mode.
//
// RGB565 and XRGB8888 framebuffers are supported, with any line length
// (stride) the driver reports. Pixels are written in the CPU's byte order,
// which is little-endian on every board we support.
//
// Dev implements display.Drawer with partial updates: Draw writes only the
// rows of the rectangle it is given, with one pwrite. Writing (rather than
// drawing into an mmap of /dev/fb0) matters on DRM's fbdev emulation: a
// written range is flushed to the display at once, a mapped page only when
// the deferred-I/O timer fires, ~50 ms later.
package fbdev
