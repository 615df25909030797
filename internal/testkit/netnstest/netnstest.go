package netnstest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// Pair is a veth pair: ServerIf in namespace ServerNS, ClientIf in
// ClientNS. The server side has ServerAddr and is up; the client side is
// up and has no address.
type Pair struct {
	ServerNS, ClientNS string
	ServerIf, ClientIf string
	ServerAddr         string // "192.168.77.1/24"
}

// New creates the namespaces and the pair, named after prefix (at most 4
// characters) and the process ID, and removes them when t ends.
func New(t testing.TB, prefix string) Pair {
	t.Helper()
	if testing.Short() {
		t.Skip("creates network namespaces; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) not found")
	}
	id := os.Getpid() % 100000
	p := Pair{
		ServerNS: fmt.Sprintf("%ssrv%d", prefix, id), ClientNS: fmt.Sprintf("%scli%d", prefix, id),
		ServerIf: fmt.Sprintf("%ss%d", prefix, id), ClientIf: fmt.Sprintf("%sc%d", prefix, id),
		ServerAddr: "192.168.77.1/24",
	}
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{p.ServerNS, p.ClientNS} {
		ip("netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	ip("link", "add", p.ServerIf, "netns", p.ServerNS, "type", "veth", "peer", "name", p.ClientIf, "netns", p.ClientNS)
	ip("-n", p.ServerNS, "addr", "add", p.ServerAddr, "dev", p.ServerIf)
	ip("-n", p.ServerNS, "link", "set", p.ServerIf, "up")
	ip("-n", p.ClientNS, "link", "set", p.ClientIf, "up")
	return p
}

// In runs f on a thread moved into namespace ns and returns its error. The
// thread is never unlocked: the runtime discards it when f returns, so no
// other goroutine ever runs in ns by accident.
func In(ns string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromName(ns)
		if err == nil {
			err = netns.Set(h)
			h.Close()
		}
		if err != nil {
			done <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		done <- f()
	}()
	return <-done
}
