package initramfs

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Paths of the files every image carries. PID 1 reads them from here.
const (
	InitPath         = "/init"
	BoardProfilePath = "/etc/zmonitor/board.json"
	TrustAnchorPath  = "/etc/zmonitor/provisioning-anchor.pem"
)

// Kind is the type of an archive entry.
type Kind int

// Entry kinds. The zero value is invalid so a forgotten Kind is caught.
const (
	KindInvalid Kind = iota
	KindDir
	KindFile
	KindCharDev
)

func (k Kind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindDir:
		return "dir"
	case KindFile:
		return "file"
	case KindCharDev:
		return "chardev"
	default:
		return fmt.Sprintf("Kind(%d)", int(k))
	}
}

// Entry is one file, directory or character device in the archive.
type Entry struct {
	// Path is absolute and clean, e.g. "/etc/zmonitor/board.json".
	Path string
	Kind Kind
	// Perm holds the permission bits, optionally with fs.ModeSticky.
	Perm fs.FileMode
	// Data is the content of a KindFile entry; empty for the other kinds.
	Data []byte
	// Major and Minor are the device numbers of a KindCharDev entry.
	Major, Minor uint32
}

// validate checks one entry on its own; relations between entries are
// checked by Spec.Entries.
func (e Entry) validate() error {
	if e.Path == "" {
		return fmt.Errorf("entry: empty path")
	}
	if !strings.HasPrefix(e.Path, "/") {
		return fmt.Errorf("entry %q: path is not absolute", e.Path)
	}
	if e.Path == "/" {
		return fmt.Errorf("entry %q: the root directory is implicit", e.Path)
	}
	for _, elem := range strings.Split(e.Path[1:], "/") {
		if elem == ".." {
			return fmt.Errorf("entry %q: path contains \"..\"", e.Path)
		}
	}
	if path.Clean(e.Path) != e.Path {
		return fmt.Errorf("entry %q: path is not clean (want %q)", e.Path, path.Clean(e.Path))
	}
	if strings.ContainsRune(e.Path, 0) {
		return fmt.Errorf("entry %q: path contains a NUL byte", e.Path)
	}
	if len(e.Path) > maxNameLen {
		return fmt.Errorf("entry %q: path longer than %d bytes", e.Path, maxNameLen)
	}
	if e.Perm&^(fs.ModePerm|fs.ModeSticky) != 0 {
		return fmt.Errorf("entry %q: mode %v has bits other than permissions and sticky", e.Path, e.Perm)
	}
	switch e.Kind {
	case KindDir:
		if len(e.Data) != 0 {
			return fmt.Errorf("entry %q: a directory has no data", e.Path)
		}
	case KindFile:
		if int64(len(e.Data)) > maxFileSize {
			return fmt.Errorf("entry %q: %d bytes, newc allows at most %d", e.Path, len(e.Data), int64(maxFileSize))
		}
	case KindCharDev:
		if len(e.Data) != 0 {
			return fmt.Errorf("entry %q: a device node has no data", e.Path)
		}
	default:
		return fmt.Errorf("entry %q: invalid kind %v", e.Path, e.Kind)
	}
	if e.Kind != KindCharDev && (e.Major != 0 || e.Minor != 0) {
		return fmt.Errorf("entry %q: device numbers on a %v", e.Path, e.Kind)
	}
	return nil
}
