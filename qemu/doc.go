// Package qemu is the qemu-virt board for tests and development: it starts
// swtpm and qemu-system-aarch64 with the board's devices (DESIGN.md
// section 8) and gives the caller handles a technician would have: the
// button (QMP system_powerdown pulses PL061 GPIO line 3), the screen (QMP
// screendump to PNG), the serial console (send lines, expect replies),
// the device's TCP ports (hostfwd on host 127.0.0.1), power cut, start
// again on the same disk and TPM state, and a clean stop.
//
// Every board instance lives in a state directory, kept across restarts:
//
//	STATE/lock          flock: one board per state directory
//	STATE/tpm/          swtpm's TPM state (keys survive reboots)
//	STATE/swtpm.sock    swtpm control socket (QEMU's -tpmdev emulator)
//	STATE/swtpm.log     swtpm's log
//	STATE/data.img      raw data disk, sparse, ext4 formatted on the host on first use
//	STATE/console.sock  serial console (PL011), QEMU is the server
//	STATE/console.log   everything the console printed (QEMU writes it)
//	STATE/qmp.sock      QMP (machine control), QEMU is the server
//	STATE/qemu.log      QEMU's own stderr
//	STATE/board.json    the running board's forwards, for zm-board press/screenshot
//
// The network is QEMU's user-mode stack with restrict=on: the guest
// (10.0.2.15, gateway 10.0.2.2, DHCP served by QEMU) reaches only the
// guestfwd services on 10.0.2.100, which QEMU connects to host 127.0.0.1
// ports; the host reaches the guest only through hostfwd ports bound to
// 127.0.0.1. Nothing listens on another address.
//
// See docs/qemu.md for the command line and known quirks.
package qemu
