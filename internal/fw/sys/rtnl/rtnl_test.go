package rtnl

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inNewNetns runs f on a thread moved into a fresh network namespace (only
// "lo", down). The thread is never unlocked, so the runtime discards it.
func inNewNetns(t *testing.T, f func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare: %v", err)
			return
		}
		f()
	}()
	<-done
}

func TestAgainstTheKernel(t *testing.T) {
	inNewNetns(t, func() {
		c, err := Dial()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		lo, err := net.InterfaceByName("lo")
		if err != nil {
			t.Error(err)
			return
		}
		if lo.Flags&net.FlagUp != 0 {
			t.Error("lo up in a fresh namespace")
		}
		if err := c.LinkUp(lo.Index); err != nil {
			t.Error(err)
			return
		}
		if lo, _ = net.InterfaceByName("lo"); lo.Flags&net.FlagUp == 0 {
			t.Error("lo not up after LinkUp")
		}
		p := netip.MustParsePrefix("10.9.8.7/24")
		if err := c.ReplaceAddr(lo.Index, p, time.Hour); err != nil {
			t.Error(err)
			return
		}
		// Replacing again (a renewal) is not an error.
		if err := c.ReplaceAddr(lo.Index, p, 2*time.Hour); err != nil {
			t.Errorf("refresh: %v", err)
		}
		if !hasAddr(t, lo, "10.9.8.7/24") {
			t.Error("address not on the link")
		}
		if err := c.ReplaceDefaultRoute(lo.Index, netip.MustParseAddr("10.9.8.1")); err != nil {
			t.Error(err)
			return
		}
		if r := defaultRoute(t); r != "lo 10.9.8.1" {
			t.Errorf("default route %q, want lo via 10.9.8.1", r)
		}
		// The address's lifetime is the last one asked for (the child
		// process inherits this thread's namespace).
		if out, err := exec.Command("ip", "-o", "-4", "addr", "show", "dev", "lo").CombinedOutput(); err == nil {
			if !strings.Contains(string(out), "valid_lft 7200sec") && !strings.Contains(string(out), "valid_lft 7199sec") {
				t.Errorf("lifetime not set: %s", out)
			}
		}
		if err := c.DeleteAddr(lo.Index, p); err != nil {
			t.Error(err)
		}
		if hasAddr(t, lo, "10.9.8.7/24") {
			t.Error("address still on the link after DeleteAddr")
		}
		// The kernel's refusals come back as its errno.
		err = c.LinkUp(99999)
		if !errors.Is(err, syscall.ENODEV) || !strings.HasPrefix(err.Error(), "link up: ") {
			t.Errorf("LinkUp(no such link) = %v, want ENODEV", err)
		}
		if err := c.DeleteAddr(lo.Index, p); !errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Errorf("deleting a missing address = %v, want EADDRNOTAVAIL", err)
		}
	})
}

func hasAddr(t *testing.T, ifc *net.Interface, want string) bool {
	t.Helper()
	addrs, err := ifc.Addrs()
	if err != nil {
		t.Error(err)
		return false
	}
	for _, a := range addrs {
		if a.String() == want {
			return true
		}
	}
	return false
}

// defaultRoute reads this thread's namespace's IPv4 default route as
// "iface gateway".
func defaultRoute(t *testing.T) string {
	b, err := os.ReadFile("/proc/thread-self/net/route")
	if err != nil {
		t.Error(err)
		return ""
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 2 && f[1] == "00000000" {
			var gw [4]byte
			for i := range 4 {
				var v byte
				for _, c := range f[2][2*i : 2*i+2] {
					v = v<<4 | byte(strings.IndexRune("0123456789ABCDEF", c))
				}
				gw[3-i] = v // /proc shows the address in host (little-endian) order
			}
			return f[0] + " " + netip.AddrFrom4(gw).String()
		}
	}
	return ""
}

func TestNonIPv4Refused(t *testing.T) {
	c := &Conn{fd: -1}
	if err := c.ReplaceAddr(1, netip.MustParsePrefix("fe80::1/64"), 0); err == nil {
		t.Error("IPv6 address accepted")
	}
	if err := c.ReplaceDefaultRoute(1, netip.MustParseAddr("::1")); err == nil {
		t.Error("IPv6 gateway accepted")
	}
}

func TestBroadcast(t *testing.T) {
	for p, want := range map[string]string{"10.0.2.15/24": "10.0.2.255", "192.168.1.9/30": "192.168.1.11", "10.0.0.1/8": "10.255.255.255", "10.0.0.1/31": "", "10.0.0.1/32": ""} {
		b, ok := broadcast(netip.MustParsePrefix(p))
		if (want == "") == ok || (ok && b.String() != want) {
			t.Errorf("broadcast(%s) = %v %v, want %q", p, b, ok, want)
		}
	}
}

func ack(seq uint32, code int32) []byte {
	b := make([]byte, nlmsgHdrLen+4+nlmsgHdrLen)
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.NLMSG_ERROR)
	ne.PutUint32(b[8:], seq)
	ne.PutUint32(b[16:], uint32(code))
	return b
}

func TestParseAck(t *testing.T) {
	if err := parseAck(ack(7, 0), 7); err != nil {
		t.Errorf("ack: %v", err)
	}
	if err := parseAck(ack(7, -int32(syscall.EEXIST)), 7); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("EEXIST: %v", err)
	}
	if err := parseAck(ack(6, 0), 7); !errors.Is(err, errNoAck) {
		t.Errorf("other seq: %v", err)
	}
	if err := parseAck(append(ack(6, 0), ack(7, -1)...), 7); !errors.Is(err, syscall.EPERM) {
		t.Errorf("second message: %v", err)
	}
	for _, bad := range [][]byte{{1, 2, 3}, ack(7, 0)[:nlmsgHdrLen+2], func() []byte { b := ack(7, 0); ne.PutUint32(b, 3); return b }(), ack(7, 5)} {
		if err := parseAck(bad, 7); err == nil || errors.Is(err, errNoAck) {
			t.Errorf("parseAck(%x) = %v, want a specific error", bad, err)
		}
	}
}

func FuzzParseAck(f *testing.F) {
	f.Add(ack(1, 0))
	f.Add(ack(1, -17))
	f.Add(append(ack(2, 0), ack(1, -1)...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		err := parseAck(b, 1)
		var errno syscall.Errno
		if errors.As(err, &errno) && (errno == 0 || errno > 4095) {
			t.Fatalf("errno %d out of range", errno)
		}
	})
}
