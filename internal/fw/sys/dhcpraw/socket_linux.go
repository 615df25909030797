package dhcpraw

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// New returns a client on cfg.Interface, which must be an Ethernet
// interface (6-byte hardware address). It opens no socket: each Request
// and Renew opens and closes its own.
func New(cfg Config) (*Client, error) {
	ifc, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("dhcp client: %w", err)
	}
	if len(ifc.HardwareAddr) != 6 {
		return nil, fmt.Errorf("dhcp client: %s has hardware address %q, not an Ethernet one", ifc.Name, ifc.HardwareAddr)
	}
	c := newClient(ifc.HardwareAddr, cfg)
	index, name := ifc.Index, ifc.Name
	c.openBroadcast = func() (conn, error) { return openPacket(index) }
	c.openUnicast = func(ctx context.Context, server netip.Addr) (conn, error) { return openUDP(ctx, name, server) }
	return c, nil
}

// htons converts a 16-bit value to network byte order, as AF_PACKET's
// protocol numbers are given.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// clientFilter is the classic BPF program "IPv4 UDP to port 68, not a
// fragment", run on packets from their IPv4 header (SOCK_DGRAM). It only
// spares the process the other traffic: unwrapClient checks everything
// again.
func clientFilter() []unix.SockFilter {
	const drop, accept = 8, 7 // instruction indices
	return []unix.SockFilter{
		/* 0 */ {Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 9}, // protocol
		/* 1 */ {Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: protoUDP, Jt: 0, Jf: drop - 2},
		/* 2 */ {Code: unix.BPF_LD | unix.BPF_H | unix.BPF_ABS, K: 6}, // flags, fragment offset
		/* 3 */ {Code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, K: 0x3fff, Jt: drop - 4, Jf: 0},
		/* 4 */ {Code: unix.BPF_LDX | unix.BPF_B | unix.BPF_MSH, K: 0}, // X = IPv4 header length
		/* 5 */ {Code: unix.BPF_LD | unix.BPF_H | unix.BPF_IND, K: 2}, // UDP destination port
		/* 6 */ {Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: ClientPort, Jt: accept - 7, Jf: drop - 7},
		/* 7 */ {Code: unix.BPF_RET | unix.BPF_K, K: 0xffff},
		/* 8 */ {Code: unix.BPF_RET | unix.BPF_K, K: 0},
	}
}

// packetConn is an AF_PACKET SOCK_DGRAM socket on one interface: the
// kernel adds and removes the Ethernet header; we frame IPv4/UDP.
type packetConn struct {
	f   *os.File
	rc  syscall.RawConn
	to  unix.SockaddrLinklayer
	buf []byte
}

func openPacket(index int) (*packetConn, error) {
	// Protocol 0: the socket receives nothing until bound below, by
	// which time the filter is in place and only this interface counts.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	filter := clientFilter()
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("packet socket: attach filter: %w", err)
	}
	proto := htons(unix.ETH_P_IP)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("packet socket: bind to interface %d: %w", index, err)
	}
	f := os.NewFile(uintptr(fd), "dhcp-packet") // non-blocking: deadlines work
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	p := &packetConn{f: f, rc: rc, buf: make([]byte, 1<<16)}
	p.to = unix.SockaddrLinklayer{Protocol: proto, Ifindex: index, Halen: 6,
		Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	return p, nil
}

// Send broadcasts msg from 0.0.0.0:68 to 255.255.255.255:67 to the link's
// broadcast address.
func (p *packetConn) Send(msg []byte) error {
	pkt, err := wrapBroadcast(msg)
	if err != nil {
		return err
	}
	var serr error
	err = p.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), pkt, 0, &p.to)
		return !errors.Is(serr, unix.EAGAIN)
	})
	if err != nil {
		return err
	}
	return serr
}

// Receive returns the payload of the next UDP datagram to port 68 that
// arrives on the interface, skipping our own outgoing packets, truncated
// ones and whatever unwrapClient refuses.
func (p *packetConn) Receive() ([]byte, error) {
	for {
		var (
			n    int
			from unix.Sockaddr
			rerr error
		)
		err := p.rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), p.buf, unix.MSG_TRUNC)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err != nil {
			return nil, err
		}
		if rerr != nil {
			return nil, rerr
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if n > len(p.buf) {
			continue // MSG_TRUNC reports the full length
		}
		if payload, err := unwrapClient(p.buf[:n]); err == nil {
			return payload, nil
		}
	}
}

func (p *packetConn) SetReadDeadline(t time.Time) error { return p.f.SetReadDeadline(t) }
func (p *packetConn) Close() error                      { return p.f.Close() }

// udpConn is a UDP socket on 0.0.0.0:68 bound to the interface, sending to
// one server. Bound to the wildcard address it also receives the replies
// of servers that broadcast them (QEMU's user-mode network does).
type udpConn struct {
	c   net.PacketConn
	to  *net.UDPAddr
	buf []byte
}

func openUDP(ctx context.Context, iface string, server netip.Addr) (*udpConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.BindToDevice(int(fd), iface)
		})
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(ctx, "udp4", ":"+strconv.Itoa(ClientPort))
	if err != nil {
		return nil, fmt.Errorf("udp socket on %s: %w", iface, err)
	}
	to := &net.UDPAddr{IP: net.IPv4bcast, Port: ServerPort}
	if server.Is4() && !server.IsUnspecified() {
		to.IP = server.AsSlice()
	}
	return &udpConn{c: pc, to: to, buf: make([]byte, 1<<16)}, nil
}

func (u *udpConn) Send(msg []byte) error {
	_, err := u.c.WriteTo(msg, u.to)
	return err
}

func (u *udpConn) Receive() ([]byte, error) {
	n, _, err := u.c.ReadFrom(u.buf)
	if err != nil {
		return nil, err
	}
	return u.buf[:n], nil
}

func (u *udpConn) SetReadDeadline(t time.Time) error { return u.c.SetReadDeadline(t) }
func (u *udpConn) Close() error                      { return u.c.Close() }
