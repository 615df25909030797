package boot

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/zmonitor/firmware/board"
	"github.com/zmonitor/firmware/internal/fw/sys/netup"
)

// network tracks the device's address for the screens, the QR and the
// console.
type network struct {
	p    board.Profile
	mu   sync.Mutex
	ip   string
	info []string
}

// newNetwork is the profile's interface before it is up: address says
// 0.0.0.0.
func newNetwork(p board.Profile) *network {
	return &network{p: p, info: []string{p.Network.Interface + ": waiting for an address"}}
}

func (n *network) address() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ip == "" {
		return "0.0.0.0"
	}
	return n.ip
}

func (n *network) lines() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.info...)
}

func (n *network) set(ip string, info []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ip, n.info = ip, info
}

// start brings the interface up (DHCP when the profile asks) in the
// background and keeps the address current.
func (n *network) start(ctx context.Context, log *slog.Logger) {
	p := n.p
	go func() {
		if err := bringUp(ctx, p, n, log); err != nil && ctx.Err() == nil {
			log.Error("network", "err", err)
			n.set("", []string{fmt.Sprintf("%s: %v", p.Network.Interface, err)})
		}
	}()
}

func ifaceIPv4(name string) string {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return ""
	}
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	return ""
}

func leaseInfo(iface string, l netup.Lease) []string {
	out := []string{fmt.Sprintf("%s: %s", iface, l.Address)}
	if l.Router.IsValid() {
		out = append(out, "router "+l.Router.String())
	}
	for _, d := range l.DNS {
		out = append(out, "dns "+d.String())
	}
	return append(out, fmt.Sprintf("lease %v from %s", l.Duration, l.Server))
}

func bringUp(ctx context.Context, p board.Profile, n *network, log *slog.Logger) error {
	if !p.Network.DHCP {
		ip := ifaceIPv4(p.Network.Interface)
		n.set(ip, []string{fmt.Sprintf("%s: %s (static)", p.Network.Interface, ip)})
		return nil
	}
	l, err := netup.Up(ctx, netup.Config{
		Interface:  p.Network.Interface,
		ResolvConf: "/etc/resolv.conf",
		Log:        log,
		OnLease: func(l netup.Lease) {
			n.set(l.Address.Addr().String(), leaseInfo(p.Network.Interface, l))
		},
	})
	if err != nil {
		return fmt.Errorf("DHCP on %s: %w", p.Network.Interface, err)
	}
	n.set(l.Address.Addr().String(), leaseInfo(p.Network.Interface, l))
	return nil
}
