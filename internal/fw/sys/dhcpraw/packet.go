package dhcpraw

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Ports and header sizes of the DHCP client's IPv4/UDP framing.
const (
	ClientPort = 68
	ServerPort = 67

	ipv4HeaderLen = 20
	udpHeaderLen  = 8
	protoUDP      = 17
	defaultTTL    = 64
)

// Errors of unwrap: why a received packet is not a UDP datagram to the
// DHCP client port.
var (
	ErrShort        = errors.New("shorter than an IPv4 header")
	ErrVersion      = errors.New("not IPv4")
	ErrHeaderLength = errors.New("bad IPv4 header length")
	ErrTotalLength  = errors.New("bad IPv4 total length")
	ErrChecksum     = errors.New("bad IPv4 header checksum")
	ErrFragment     = errors.New("IPv4 fragment")
	ErrNotUDP       = errors.New("not UDP")
	ErrUDPLength    = errors.New("bad UDP length")
	ErrPort         = errors.New("not to the DHCP client port")
)

// checksum is the Internet checksum (RFC 1071) of b, continuing from the
// partial sum initial: the one's complement of the one's complement sum of
// b's big-endian 16-bit words (an odd last byte is padded with zero).
func checksum(initial uint32, b []byte) uint16 {
	sum := initial
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// wrapBroadcast frames a DHCP message as the IPv4/UDP datagram a client
// without an address sends: 0.0.0.0:68 -> 255.255.255.255:67, TTL 64, no
// fragmentation, both checksums filled in. len(payload) must leave the
// datagram below 64 KiB (DHCP messages are a few hundred bytes).
func wrapBroadcast(payload []byte) ([]byte, error) {
	total := ipv4HeaderLen + udpHeaderLen + len(payload)
	if total > 0xffff {
		return nil, fmt.Errorf("wrap: %d-byte message does not fit an IPv4 datagram", len(payload))
	}
	src := [4]byte{0, 0, 0, 0}
	dst := [4]byte{255, 255, 255, 255}
	p := make([]byte, total)
	ip := p[:ipv4HeaderLen]
	ip[0] = 0x45 // version 4, 5 words
	binary.BigEndian.PutUint16(ip[2:], uint16(total))
	// Identification 0 and no flags: the datagram is never fragmented
	// (RFC 6864 allows ID 0 for atomic datagrams).
	ip[8] = defaultTTL
	ip[9] = protoUDP
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(0, ip))

	udp := p[ipv4HeaderLen:]
	binary.BigEndian.PutUint16(udp[0:], ClientPort)
	binary.BigEndian.PutUint16(udp[2:], ServerPort)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[udpHeaderLen:], payload)
	// The pseudo-header: addresses, protocol and UDP length.
	pseudo := uint32(binary.BigEndian.Uint16(src[0:])) + uint32(binary.BigEndian.Uint16(src[2:])) +
		uint32(binary.BigEndian.Uint16(dst[0:])) + uint32(binary.BigEndian.Uint16(dst[2:])) +
		protoUDP + uint32(len(udp))
	sum := checksum(pseudo, udp)
	if sum == 0 {
		sum = 0xffff // 0 means "no checksum" in UDP over IPv4 (RFC 768)
	}
	binary.BigEndian.PutUint16(udp[6:], sum)
	return p, nil
}

// unwrapClient returns the UDP payload of pkt, an IPv4 packet as an
// AF_PACKET SOCK_DGRAM socket delivers it (link header removed), when pkt is
// a whole, unfragmented UDP datagram to port 68. Bytes past the IPv4 total
// length (Ethernet padding) are dropped. The IPv4 header checksum is
// verified; the UDP checksum is not: on veth and virtio links the sender's
// checksum offload leaves it unfinished in what a packet socket sees, and
// the DHCP decoder checks the message's structure. The returned slice
// aliases pkt.
func unwrapClient(pkt []byte) ([]byte, error) {
	if len(pkt) < ipv4HeaderLen {
		return nil, fmt.Errorf("unwrap: %d bytes: %w", len(pkt), ErrShort)
	}
	if v := pkt[0] >> 4; v != 4 {
		return nil, fmt.Errorf("unwrap: version %d: %w", v, ErrVersion)
	}
	hl := int(pkt[0]&0x0f) * 4
	if hl < ipv4HeaderLen || hl > len(pkt) {
		return nil, fmt.Errorf("unwrap: header of %d bytes in %d: %w", hl, len(pkt), ErrHeaderLength)
	}
	total := int(binary.BigEndian.Uint16(pkt[2:]))
	if total < hl || total > len(pkt) {
		return nil, fmt.Errorf("unwrap: total length %d (header %d, have %d): %w", total, hl, len(pkt), ErrTotalLength)
	}
	if checksum(0, pkt[:hl]) != 0 {
		return nil, fmt.Errorf("unwrap: %w", ErrChecksum)
	}
	if frag := binary.BigEndian.Uint16(pkt[6:]); frag&0x3fff != 0 { // MF or an offset
		return nil, fmt.Errorf("unwrap: flags/offset %#04x: %w", frag, ErrFragment)
	}
	if pkt[9] != protoUDP {
		return nil, fmt.Errorf("unwrap: protocol %d: %w", pkt[9], ErrNotUDP)
	}
	udp := pkt[hl:total]
	if len(udp) < udpHeaderLen {
		return nil, fmt.Errorf("unwrap: %d bytes after the IPv4 header: %w", len(udp), ErrUDPLength)
	}
	n := int(binary.BigEndian.Uint16(udp[4:]))
	if n < udpHeaderLen || n > len(udp) {
		return nil, fmt.Errorf("unwrap: UDP length %d in %d bytes: %w", n, len(udp), ErrUDPLength)
	}
	udp = udp[:n]
	if port := binary.BigEndian.Uint16(udp[2:]); port != ClientPort {
		return nil, fmt.Errorf("unwrap: destination port %d: %w", port, ErrPort)
	}
	return udp[udpHeaderLen:], nil
}
