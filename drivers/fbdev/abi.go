package fbdev

// Kernel ABI from include/uapi/linux/fb.h and include/uapi/linux/kd.h. The
// structs mirror the C layout on 64-bit Linux (unsigned long is 8 bytes):
// fb_var_screeninfo is 160 bytes, fb_fix_screeninfo 80. abi_test.go checks
// the sizes and field offsets; uintptr keeps the 32-bit layout (68 bytes)
// correct too.

const (
	ioctlFBIOGET_VSCREENINFO = 0x4600
	ioctlFBIOGET_FSCREENINFO = 0x4602
	ioctlFBIOPUT_VSCREENINFO = 0x4601
	// fbActivateForce makes FBIOPUT_VSCREENINFO set the mode even when it
	// did not change.
	fbActivateForce = 128
	ioctlKDGETMODE  = 0x4B3B
	ioctlKDSETMODE  = 0x4B3A

	kdText     = 0x00
	kdGraphics = 0x01

	fbTypePackedPixels = 0
	fbVisualTrueColor  = 2
)

// bitfield is struct fb_bitfield.
type bitfield struct {
	Offset   uint32
	Length   uint32
	MsbRight uint32
}

// varScreeninfo is struct fb_var_screeninfo.
type varScreeninfo struct {
	Xres, Yres               uint32
	XresVirtual, YresVirtual uint32
	Xoffset, Yoffset         uint32
	BitsPerPixel             uint32
	Grayscale                uint32
	Red, Green, Blue, Transp bitfield
	Nonstd                   uint32
	Activate                 uint32
	Height, Width            uint32
	AccelFlags               uint32
	Pixclock                 uint32
	LeftMargin, RightMargin  uint32
	UpperMargin, LowerMargin uint32
	HsyncLen, VsyncLen       uint32
	Sync, Vmode, Rotate      uint32
	Colorspace               uint32
	Reserved                 [4]uint32
}

// fixScreeninfo is struct fb_fix_screeninfo.
type fixScreeninfo struct {
	ID           [16]byte
	SmemStart    uintptr
	SmemLen      uint32
	Type         uint32
	TypeAux      uint32
	Visual       uint32
	Xpanstep     uint16
	Ypanstep     uint16
	Ywrapstep    uint16
	LineLength   uint32
	MmioStart    uintptr
	MmioLen      uint32
	Accel        uint32
	Capabilities uint16
	Reserved     [2]uint16
}
