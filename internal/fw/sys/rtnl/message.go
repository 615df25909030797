package rtnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// Netlink is host-endian on the wire.
var ne = binary.NativeEndian

const (
	nlmsgHdrLen = unix.SizeofNlMsghdr // 16
	attrHdrLen  = unix.SizeofRtAttr   // 4
)

func align4(n int) int { return (n + 3) &^ 3 }

// message builds one netlink request: header, fixed body, attributes.
type message struct {
	b []byte
}

func newMessage(typ, flags uint16, seq uint32, body []byte) *message {
	m := &message{b: make([]byte, nlmsgHdrLen, 128)}
	ne.PutUint16(m.b[4:], typ)
	ne.PutUint16(m.b[6:], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	ne.PutUint32(m.b[8:], seq)
	m.b = append(m.b, body...)
	m.b = m.b[:align4(len(m.b))]
	return m
}

func (m *message) attr(typ uint16, data []byte) {
	var h [attrHdrLen]byte
	ne.PutUint16(h[0:], uint16(attrHdrLen+len(data)))
	ne.PutUint16(h[2:], typ)
	m.b = append(m.b, h[:]...)
	m.b = append(m.b, data...)
	for len(m.b)%4 != 0 {
		m.b = append(m.b, 0)
	}
}

func (m *message) attrU32(typ uint16, v uint32) {
	var b [4]byte
	ne.PutUint32(b[:], v)
	m.attr(typ, b[:])
}

func (m *message) bytes() []byte {
	ne.PutUint32(m.b[0:], uint32(len(m.b)))
	return m.b
}

// ifinfomsg: family, pad, type, index, flags, change.
func linkBody(index int, flags, change uint32) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	b[0] = unix.AF_UNSPEC
	ne.PutUint32(b[4:], uint32(int32(index)))
	ne.PutUint32(b[8:], flags)
	ne.PutUint32(b[12:], change)
	return b
}

// ifaddrmsg: family, prefixlen, flags, scope, index.
func addrBody(index int, p netip.Prefix) []byte {
	b := make([]byte, unix.SizeofIfAddrmsg)
	b[0] = unix.AF_INET
	b[1] = byte(p.Bits())
	b[3] = unix.RT_SCOPE_UNIVERSE
	ne.PutUint32(b[4:], uint32(index))
	return b
}

// rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
func routeBody() []byte {
	b := make([]byte, unix.SizeofRtMsg)
	b[0] = unix.AF_INET
	b[4] = unix.RT_TABLE_MAIN
	b[5] = unix.RTPROT_DHCP
	b[6] = unix.RT_SCOPE_UNIVERSE
	b[7] = unix.RTN_UNICAST
	return b
}

// broadcast is the IPv4 broadcast address of p (none for /31 and /32).
func broadcast(p netip.Prefix) (netip.Addr, bool) {
	if p.Bits() >= 31 {
		return netip.Addr{}, false
	}
	a := p.Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a), true
}

// errNoAck is returned when a reply has no acknowledgement for seq.
var errNoAck = errors.New("no acknowledgement in the kernel's reply")

// parseAck finds the acknowledgement of request seq in a netlink reply: nil
// for success, the kernel's errno otherwise; errNoAck if the reply holds
// only other messages.
func parseAck(b []byte, seq uint32) error {
	for len(b) > 0 {
		if len(b) < nlmsgHdrLen {
			return fmt.Errorf("netlink reply: %d-byte tail shorter than a header", len(b))
		}
		n := int(ne.Uint32(b[0:]))
		if n < nlmsgHdrLen || n > len(b) {
			return fmt.Errorf("netlink reply: message length %d of %d bytes", n, len(b))
		}
		typ, mseq := ne.Uint16(b[4:]), ne.Uint32(b[8:])
		if typ == unix.NLMSG_ERROR && mseq == seq {
			if n < nlmsgHdrLen+4 {
				return fmt.Errorf("netlink reply: %d-byte error message", n)
			}
			code := int32(ne.Uint32(b[nlmsgHdrLen:]))
			if code == 0 {
				return nil
			}
			if code > 0 || code < -4095 {
				return fmt.Errorf("netlink reply: error code %d", code)
			}
			return syscall.Errno(-code)
		}
		b = b[min(align4(n), len(b)):]
	}
	return errNoAck
}
