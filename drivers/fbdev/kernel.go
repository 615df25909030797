package fbdev

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// kernel is the real sys: ioctls on the device files.
type kernel struct{}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if e != 0 {
		return e
	}
	return nil
}

func (kernel) varInfo(fd int) (varScreeninfo, error) {
	var v varScreeninfo
	err := ioctl(fd, ioctlFBIOGET_VSCREENINFO, unsafe.Pointer(&v))
	return v, err
}

func (kernel) fixInfo(fd int) (fixScreeninfo, error) {
	var f fixScreeninfo
	err := ioctl(fd, ioctlFBIOGET_FSCREENINFO, unsafe.Pointer(&f))
	return f, err
}

func (kernel) kdMode(fd int) (int, error) {
	// KDGETMODE stores an int through its argument.
	var mode int32
	err := ioctl(fd, ioctlKDGETMODE, unsafe.Pointer(&mode))
	return int(mode), err
}

func (kernel) setKDMode(fd int, mode int) error {
	// KDSETMODE takes the mode as the argument value itself.
	return unix.IoctlSetInt(fd, ioctlKDSETMODE, mode)
}

func (kernel) setVarInfo(fd int, v varScreeninfo) error {
	return ioctl(fd, ioctlFBIOPUT_VSCREENINFO, unsafe.Pointer(&v))
}
