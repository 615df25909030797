// Package initramfs builds the firmware's initramfs: a gzip-compressed newc
// cpio archive whose /init is the static firmware binary, together with the
// board profile and the provisioning trust anchor.
//
// The archive is reproducible: the same Spec always gives the same bytes
// (for one Go toolchain, whose compress/flate fixes the gzip stream). Entries
// are sorted by path, owned by uid/gid 0, have fixed modes, fixed inode
// numbers and one fixed modification time; the gzip header carries no name
// and no time.
//
// The newc writer is our own (about fifty lines): github.com/cavaliergopher/cpio
// v1.0.1 writes zero device numbers for every entry, so it cannot write the
// /dev/console node the kernel opens for PID 1's stdin, stdout and stderr.
// Its reader is used by the tests as an independent check of the format.
package initramfs
