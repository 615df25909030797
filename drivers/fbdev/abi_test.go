package fbdev

import (
	"testing"
	"unsafe"
)

// The layouts must match the kernel's on the 64-bit targets (amd64 host,
// arm64 device): run with GOARCH=arm64 under QEMU user mode, or check with
// `GOARCH=arm64 go vet` which type-checks this file for arm64.
func TestABILayout(t *testing.T) {
	var v varScreeninfo
	var f fixScreeninfo
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("layout offsets below are for 64-bit targets")
	}
	checks := []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(fb_var_screeninfo)", unsafe.Sizeof(v), 160},
		{"var.bits_per_pixel", unsafe.Offsetof(v.BitsPerPixel), 24},
		{"var.red", unsafe.Offsetof(v.Red), 32},
		{"var.transp", unsafe.Offsetof(v.Transp), 68},
		{"var.nonstd", unsafe.Offsetof(v.Nonstd), 80},
		{"var.pixclock", unsafe.Offsetof(v.Pixclock), 100},
		{"var.colorspace", unsafe.Offsetof(v.Colorspace), 140},
		{"var.reserved", unsafe.Offsetof(v.Reserved), 144},
		{"sizeof(fb_fix_screeninfo)", unsafe.Sizeof(f), 80},
		{"fix.smem_start", unsafe.Offsetof(f.SmemStart), 16},
		{"fix.smem_len", unsafe.Offsetof(f.SmemLen), 24},
		{"fix.visual", unsafe.Offsetof(f.Visual), 36},
		{"fix.ywrapstep", unsafe.Offsetof(f.Ywrapstep), 44},
		{"fix.line_length", unsafe.Offsetof(f.LineLength), 48},
		{"fix.mmio_start", unsafe.Offsetof(f.MmioStart), 56},
		{"fix.mmio_len", unsafe.Offsetof(f.MmioLen), 64},
		{"fix.capabilities", unsafe.Offsetof(f.Capabilities), 72},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d; want %d", c.name, c.got, c.want)
		}
	}
}
