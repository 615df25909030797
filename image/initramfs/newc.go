package initramfs

import (
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// newc ("070701") format limits: every header field is 8 hex digits.
const (
	maxFileSize = 1<<32 - 1
	maxNameLen  = 4095
	newcMagic   = "070701"
	trailerName = "TRAILER!!!"
	headerLen   = 110
)

// Type bits of the newc mode field (the traditional st_mode values).
const (
	modeDir    = 0o040000
	modeReg    = 0o100000
	modeChar   = 0o020000
	modeSticky = 0o001000
)

// newcWriter writes a newc archive. It remembers the first error; later
// calls do nothing.
type newcWriter struct {
	w   io.Writer
	err error
}

// mode returns the newc mode field of e.
func mode(e Entry) uint32 {
	m := uint32(e.Perm.Perm())
	if e.Perm&fs.ModeSticky != 0 {
		m |= modeSticky
	}
	switch e.Kind {
	case KindDir:
		m |= modeDir
	case KindFile:
		m |= modeReg
	case KindCharDev:
		m |= modeChar
	}
	return m
}

// writeEntry writes e with inode number ino. The archive name has no leading
// slash, as the kernel's own gen_init_cpio writes it.
func (nw *newcWriter) writeEntry(e Entry, ino uint32, mtime uint32) {
	nlink := uint32(1)
	if e.Kind == KindDir {
		nlink = 2
	}
	nw.header(strings.TrimPrefix(e.Path, "/"), [13]uint32{
		ino, mode(e), 0, 0, nlink, mtime, uint32(len(e.Data)),
		0, 0, e.Major, e.Minor, 0, 0, // namesize is filled in by header
	})
	nw.write(e.Data)
	nw.pad(len(e.Data))
}

// close writes the trailer entry.
func (nw *newcWriter) close() error {
	nw.header(trailerName, [13]uint32{0, 0, 0, 0, 1})
	return nw.err
}

// header writes a header whose fields are ino, mode, uid, gid, nlink, mtime,
// filesize, devmajor, devminor, rdevmajor, rdevminor, (namesize), check.
func (nw *newcWriter) header(name string, f [13]uint32) {
	f[11] = uint32(len(name) + 1)
	var b strings.Builder
	b.Grow(headerLen + len(name) + 4)
	b.WriteString(newcMagic)
	for _, v := range f {
		fmt.Fprintf(&b, "%08X", v)
	}
	b.WriteString(name)
	b.WriteByte(0)
	nw.write([]byte(b.String()))
	nw.pad(headerLen + len(name) + 1)
}

// pad writes the zero bytes that align n written bytes to 4.
func (nw *newcWriter) pad(n int) {
	var zero [3]byte
	nw.write(zero[:(4-n%4)%4])
}

func (nw *newcWriter) write(p []byte) {
	if nw.err != nil || len(p) == 0 {
		return
	}
	_, nw.err = nw.w.Write(p)
}
