package dhcpraw

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"
)

// TestChecksumKnownHeader checks the Internet checksum against a header
// whose checksum is known (the example of the IPv4 header article:
// 192.168.0.1 -> 192.168.0.199, UDP, checksum 0xb861).
func TestChecksumKnownHeader(t *testing.T) {
	hdr, _ := hex.DecodeString("450000730000400040110000c0a80001c0a800c7")
	if got := checksum(0, hdr); got != 0xb861 {
		t.Fatalf("checksum %#04x, want 0xb861", got)
	}
	binary.BigEndian.PutUint16(hdr[10:], 0xb861)
	if got := checksum(0, hdr); got != 0 {
		t.Fatalf("checksum over a correct header %#04x, want 0", got)
	}
	if got := checksum(0, []byte{0x01}); got != ^uint16(0x0100) {
		t.Fatalf("odd length: %#04x", got)
	}
}

// TestWrapBroadcast compares the framing of a 3-byte message with a packet
// built and summed independently (Python's struct, RFC 1071 and RFC 768).
func TestWrapBroadcast(t *testing.T) {
	got, err := wrapBroadcast([]byte{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString("4500001f0000000040117acf00000000ffffffff00440043000bfb4f010203")
	if !bytes.Equal(got, want) {
		t.Fatalf("wrap:\n got %x\nwant %x", got, want)
	}
	if _, err := wrapBroadcast(make([]byte, 0xffff)); err == nil {
		t.Fatal("a 64 KiB message was framed")
	}
}

// reply frames payload as a server's IPv4/UDP datagram src:67 -> dst:68.
func reply(payload []byte) []byte {
	p := make([]byte, ipv4HeaderLen+udpHeaderLen+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[8], p[9] = 64, protoUDP
	copy(p[12:], []byte{192, 168, 77, 1})
	copy(p[16:], []byte{255, 255, 255, 255})
	binary.BigEndian.PutUint16(p[10:], checksum(0, p[:ipv4HeaderLen]))
	u := p[ipv4HeaderLen:]
	binary.BigEndian.PutUint16(u[0:], ServerPort)
	binary.BigEndian.PutUint16(u[2:], ClientPort)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[udpHeaderLen:], payload)
	return p
}

// resum fixes the IPv4 header checksum after a test changed the header.
func resum(p []byte) []byte {
	hl := int(p[0]&0x0f) * 4
	p[10], p[11] = 0, 0
	binary.BigEndian.PutUint16(p[10:], checksum(0, p[:hl]))
	return p
}

func TestUnwrapClient(t *testing.T) {
	msg := []byte("dhcp message")
	got, err := unwrapClient(reply(msg))
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("unwrap = %q, %v", got, err)
	}
	// Ethernet pads short frames: bytes past the total length are dropped.
	padded := append(reply(msg), 0, 0, 0, 0)
	if got, err := unwrapClient(padded); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("padded: %q, %v", got, err)
	}
	// IPv4 options (a 24-byte header) are skipped.
	r := reply(msg)
	opt := append(append(append([]byte{}, r[:20]...), 1, 1, 1, 1), r[20:]...) // 4 NOPs
	opt[0] = 0x46
	binary.BigEndian.PutUint16(opt[2:], uint16(len(opt)))
	if got, err := unwrapClient(resum(opt)); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("options: %q, %v", got, err)
	}
	// The UDP length bounds the payload.
	r = reply(msg)
	binary.BigEndian.PutUint16(r[24:], udpHeaderLen+4)
	if got, err := unwrapClient(r); err != nil || string(got) != "dhcp" {
		t.Fatalf("UDP length: %q, %v", got, err)
	}
}

func TestUnwrapClientRefuses(t *testing.T) {
	msg := []byte("dhcp message")
	mod := func(f func(p []byte) []byte) []byte { return f(reply(msg)) }
	for _, tc := range []struct {
		name string
		pkt  []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"19 bytes", reply(msg)[:19], ErrShort},
		{"IPv6", mod(func(p []byte) []byte { p[0] = 0x65; return p }), ErrVersion},
		{"IHL 4", mod(func(p []byte) []byte { p[0] = 0x44; return p }), ErrHeaderLength},
		{"IHL past the end", reply(msg)[:23], ErrTotalLength},
		{"IHL 15 in 40 bytes", mod(func(p []byte) []byte { p[0] = 0x4f; return p[:40] }), ErrHeaderLength},
		{"total below header", mod(func(p []byte) []byte { binary.BigEndian.PutUint16(p[2:], 19); return resum(p) }), ErrTotalLength},
		{"truncated", reply(msg)[:30], ErrTotalLength},
		{"checksum", mod(func(p []byte) []byte { p[10] ^= 1; return p }), ErrChecksum},
		{"more fragments", mod(func(p []byte) []byte { p[6] = 0x20; return resum(p) }), ErrFragment},
		{"fragment offset", mod(func(p []byte) []byte { p[7] = 0x01; return resum(p) }), ErrFragment},
		{"TCP", mod(func(p []byte) []byte { p[9] = 6; return resum(p) }), ErrNotUDP},
		{"no UDP header", mod(func(p []byte) []byte { binary.BigEndian.PutUint16(p[2:], 24); return resum(p) }), ErrUDPLength},
		{"UDP length 7", mod(func(p []byte) []byte { binary.BigEndian.PutUint16(p[24:], 7); return p }), ErrUDPLength},
		{"UDP length past IPv4", mod(func(p []byte) []byte { binary.BigEndian.PutUint16(p[24:], 200); return p }), ErrUDPLength},
		{"to the server port", mod(func(p []byte) []byte { binary.BigEndian.PutUint16(p[22:], ServerPort); return p }), ErrPort},
		{"our own DISCOVER", mustWrap(t, msg), ErrPort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := unwrapClient(tc.pkt)
			if !errors.Is(err, tc.want) {
				t.Fatalf("unwrap = %q, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func mustWrap(t testing.TB, msg []byte) []byte {
	p, err := wrapBroadcast(msg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func BenchmarkUnwrapClient(b *testing.B) {
	p := reply(make([]byte, 300))
	for b.Loop() {
		if _, err := unwrapClient(p); err != nil {
			b.Fatal(err)
		}
	}
}
