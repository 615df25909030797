// Package dhcpraw is the firmware's DHCPv4 client transport: it runs the
// DISCOVER/OFFER/REQUEST/ACK exchange and lease renewals on one Ethernet
// interface, with messages built and decoded by
// github.com/insomniacslk/dhcp/dhcpv4 and sockets from golang.org/x/sys/unix.
// It replaces that module's nclient4, whose packet-socket stack
// (mdlayher/packet, mdlayher/socket, x/net/bpf, x/sync/errgroup) the
// firmware does not need.
//
// Request works before the interface has an address: an AF_PACKET
// SOCK_DGRAM socket bound to the interface (the kernel adds and removes the
// Ethernet header), a classic BPF filter for "UDP to port 68", and our own
// IPv4/UDP framing — DISCOVER and REQUEST go from 0.0.0.0:68 to
// 255.255.255.255:67 at the link broadcast address; what comes back is
// unwrapped (IPv4 header checksum, no fragments, UDP to port 68) and taken
// only when it decodes as a BOOTREPLY with our transaction ID, our hardware
// address and the expected message type (and, for the ACK, the offering
// server's identifier). Everything else is ignored. The first OFFER wins.
//
// Renew runs when the leased address is configured, so it uses the kernel's
// UDP: a socket on 0.0.0.0:68 bound to the interface (SO_BINDTODEVICE)
// sends the REQUEST (ciaddr = the lease, new transaction ID) unicast to the
// server identifier, RFC 2131's RENEWING; the kernel does routing, ARP and
// checksums. Bound to the wildcard address, the socket also receives
// servers that broadcast their replies (QEMU's user-mode network does). A
// raw-socket renewal could only broadcast at the link level.
//
// Each message is sent up to Config.Tries times; the wait starts at
// Config.Timeout and doubles. The caller's context ends an exchange early.
// Every exchange opens its own socket and closes it on every path, so the
// client holds no socket while the lease runs; Close ends an exchange in
// progress.
package dhcpraw
