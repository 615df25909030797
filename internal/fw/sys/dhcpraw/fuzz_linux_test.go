package dhcpraw

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"
)

// runFilter runs a classic BPF program over pkt the way the kernel does
// for the instructions clientFilter uses; a load past the end rejects the
// packet. It returns the verdict (0: drop).
func runFilter(t testing.TB, prog []unix.SockFilter, pkt []byte) uint32 {
	var a, x uint32
	load := func(off uint32, size int) (uint32, bool) {
		if uint64(off)+uint64(size) > uint64(len(pkt)) {
			return 0, false
		}
		if size == 1 {
			return uint32(pkt[off]), true
		}
		return uint32(binary.BigEndian.Uint16(pkt[off:])), true
	}
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		var ok = true
		switch in.Code {
		case unix.BPF_LD | unix.BPF_B | unix.BPF_ABS:
			a, ok = load(in.K, 1)
		case unix.BPF_LD | unix.BPF_H | unix.BPF_ABS:
			a, ok = load(in.K, 2)
		case unix.BPF_LD | unix.BPF_H | unix.BPF_IND:
			a, ok = load(x+in.K, 2)
		case unix.BPF_LDX | unix.BPF_B | unix.BPF_MSH:
			var b uint32
			b, ok = load(in.K, 1)
			x = 4 * (b & 0x0f)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			if a == in.K {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			if a&in.K != 0 {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return in.K
		default:
			t.Fatalf("instruction %d: opcode %#x not modelled", pc, in.Code)
		}
		if !ok {
			return 0
		}
	}
	t.Fatal("program ran off its end")
	return 0
}

func TestClientFilter(t *testing.T) {
	prog := clientFilter()
	msg := []byte("dhcp")
	for _, tc := range []struct {
		name   string
		pkt    []byte
		accept bool
	}{
		{"reply", reply(msg), true},
		{"reply with options", func() []byte {
			r := reply(msg)
			p := append(append(append([]byte{}, r[:20]...), 1, 1, 1, 1), r[20:]...)
			p[0] = 0x46
			return p
		}(), true},
		{"to port 67", mustWrap(t, msg), false},
		{"TCP", func() []byte { p := reply(msg); p[9] = 6; return p }(), false},
		{"fragment", func() []byte { p := reply(msg); p[6] = 0x20; return p }(), false},
		{"short", reply(msg)[:21], false},
	} {
		if got := runFilter(t, prog, tc.pkt) != 0; got != tc.accept {
			t.Errorf("%s: accepted %v, want %v", tc.name, got, tc.accept)
		}
	}
}

// FuzzUnwrapClient feeds outside bytes to the receive path: unwrapClient
// must not panic, must return a slice of its input, must take only what
// the kernel filter lets through, and what it returns goes to the reply
// matcher, which must not panic either.
func FuzzUnwrapClient(f *testing.F) {
	f.Add(reply([]byte("dhcp message")))
	f.Add(reply(offerBytes(f)))
	f.Add(mustWrap(f, []byte{1, 2, 3}))
	f.Add([]byte{})
	f.Add([]byte{0x45})
	f.Add(append(reply([]byte("x")), 0, 0, 0))
	f.Add(func() []byte { p := reply([]byte("frag")); p[6] = 0x20; return resum(p) }())
	prog := clientFilter()
	w := want{hw: testHW(), types: []dhcpv4.MessageType{dhcpv4.MessageTypeOffer}}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		payload, err := unwrapClient(pkt)
		if err != nil {
			if payload != nil {
				t.Fatalf("payload %q with error %v", payload, err)
			}
			return
		}
		if len(payload) > len(pkt) || (len(payload) > 0 && !bytes.Contains(pkt, payload)) {
			t.Fatalf("payload %q is not part of the packet", payload)
		}
		if runFilter(t, prog, pkt) == 0 {
			t.Fatalf("unwrapped a packet the kernel filter drops: %x", pkt)
		}
		_, _ = w.match(payload)
	})
}
