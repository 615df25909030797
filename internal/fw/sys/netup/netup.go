package netup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/zmonitor/firmware/internal/base/clock"
)

// Links is the kernel's view of the interfaces (netlink on Linux).
type Links interface {
	// Up sets the link administratively up.
	Up(name string) error
	// SetAddr adds or refreshes addr on the link, valid for lifetime.
	SetAddr(name string, addr netip.Prefix, lifetime time.Duration) error
	// DelAddr removes addr from the link.
	DelAddr(name string, addr netip.Prefix) error
	// SetDefaultRoute makes gw the default route through the link.
	SetDefaultRoute(name string, gw netip.Addr) error
}

// DHCP is a DHCPv4 client on one interface.
type DHCP interface {
	// Request runs DISCOVER/OFFER/REQUEST/ACK and returns the ACK.
	Request(ctx context.Context) (*dhcpv4.DHCPv4, error)
	// Renew renews the last lease (REQUEST/ACK) and returns the ACK.
	Renew(ctx context.Context) (*dhcpv4.DHCPv4, error)
	Close() error
}

// Config says how to bring the network up.
type Config struct {
	// Interface is the board's network interface (eth0).
	Interface string
	// Attempts bounds the DHCP attempts of Up; 0 means DefaultAttempts.
	Attempts int
	// AttemptTimeout bounds one DHCP exchange; 0 means DefaultAttemptTimeout.
	AttemptTimeout time.Duration
	// ResolvConf is where the DNS servers are written ("/etc/resolv.conf");
	// empty means they are not written.
	ResolvConf string
	// OnLease, if not nil, is called (from the renewal goroutine) when a
	// renewal or rebinding changed the configuration.
	OnLease func(Lease)
	// Clock drives backoff and renewal; nil means the system clock.
	Clock clock.Clock
	// Log receives one line per lease event; nil discards.
	Log *slog.Logger
	// Links and DHCP are the system; nil means internal/fw/sys/rtnl and
	// nclient4 on Interface (tests pass fakes).
	Links Links
	DHCP  DHCP
}

// Defaults of Config.
const (
	DefaultAttempts       = 5
	DefaultAttemptTimeout = 6 * time.Second
	// Backoff between failed attempts doubles from minBackoff to maxBackoff.
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
)

func (c *Config) defaults() error {
	if c.Interface == "" {
		return errors.New("netup: interface name is required")
	}
	if c.Attempts <= 0 {
		c.Attempts = DefaultAttempts
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = DefaultAttemptTimeout
	}
	if c.Clock == nil {
		c.Clock = clock.System{}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Links == nil {
		c.Links = netlinkLinks{}
	}
	return nil
}

// Up brings the loopback and cfg.Interface up, leases an address with
// DHCP (bounded attempts with backoff), configures it and returns the
// lease. Until ctx ends it then renews the lease in the background at T1,
// rebinding with a fresh DISCOVER once the lease has expired.
func Up(ctx context.Context, cfg Config) (Lease, error) {
	if err := cfg.defaults(); err != nil {
		return Lease{}, err
	}
	for _, name := range []string{"lo", cfg.Interface} {
		if err := cfg.Links.Up(name); err != nil {
			return Lease{}, fmt.Errorf("netup: link %s up: %w", name, err)
		}
	}
	if cfg.DHCP == nil {
		c, err := newDHCP(cfg.Interface, cfg.AttemptTimeout)
		if err != nil {
			return Lease{}, fmt.Errorf("netup: dhcp client on %s: %w", cfg.Interface, err)
		}
		cfg.DHCP = c
	}
	n := &netup{cfg: cfg}
	l, err := n.request(ctx, cfg.Attempts)
	if err == nil {
		err = n.apply(Lease{}, l)
	}
	if err != nil {
		cfg.DHCP.Close()
		return Lease{}, err
	}
	go n.maintain(ctx, l)
	return l, nil
}

type netup struct{ cfg Config }

// wait waits d on the clock; false when ctx ended first.
func (n *netup) wait(ctx context.Context, d time.Duration) bool {
	t := n.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

// request runs up to attempts full DHCP exchanges with doubling backoff.
func (n *netup) request(ctx context.Context, attempts int) (Lease, error) {
	backoff := minBackoff
	var last error
	start := n.cfg.Clock.Now()
	for i := 1; ; i++ {
		actx, cancel := context.WithTimeout(ctx, n.cfg.AttemptTimeout)
		ack, err := n.cfg.DHCP.Request(actx)
		cancel()
		if err == nil {
			l, perr := LeaseFromACK(ack, n.cfg.Clock.Now())
			if perr == nil {
				n.cfg.Log.Info("dhcp lease", "iface", n.cfg.Interface, "lease", l.String(),
					"attempts", i, "took", l.Acquired.Sub(start).Round(time.Microsecond))
				return l, nil
			}
			err = perr
		}
		last = err
		n.cfg.Log.Warn("dhcp attempt failed", "iface", n.cfg.Interface, "attempt", i, "err", err)
		if attempts > 0 && i >= attempts {
			return Lease{}, fmt.Errorf("netup: dhcp on %s: %d attempts failed, last: %w", n.cfg.Interface, i, last)
		}
		if !n.wait(ctx, backoff) {
			return Lease{}, fmt.Errorf("netup: dhcp on %s: %w (last: %v)", n.cfg.Interface, ctx.Err(), last)
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// apply configures the interface for l, removing old's address if it
// changed.
func (n *netup) apply(old, l Lease) error {
	name := n.cfg.Interface
	if old.Address.IsValid() && old.Address != l.Address {
		if err := n.cfg.Links.DelAddr(name, old.Address); err != nil {
			n.cfg.Log.Warn("remove old address", "addr", old.Address.String(), "err", err)
		}
	}
	if err := n.cfg.Links.SetAddr(name, l.Address, l.Duration); err != nil {
		return fmt.Errorf("netup: address %s on %s: %w", l.Address, name, err)
	}
	if l.Router.IsValid() {
		if err := n.cfg.Links.SetDefaultRoute(name, l.Router); err != nil {
			return fmt.Errorf("netup: default route via %s: %w", l.Router, err)
		}
	}
	if rc := ResolvConf(l); rc != nil && n.cfg.ResolvConf != "" {
		if err := writeFileAtomic(n.cfg.ResolvConf, rc); err != nil {
			return fmt.Errorf("netup: %w", err)
		}
	}
	return nil
}

// maintain renews l at T1 until ctx ends; after expiry it rebinds.
func (n *netup) maintain(ctx context.Context, l Lease) {
	defer n.cfg.DHCP.Close()
	for {
		next, ok := n.renew(ctx, l)
		if !ok {
			return
		}
		if !next.Equal(l) {
			if err := n.apply(l, next); err != nil {
				n.cfg.Log.Error("apply renewed lease", "err", err)
			} else if n.cfg.OnLease != nil {
				n.cfg.OnLease(next)
			}
		} else if err := n.cfg.Links.SetAddr(n.cfg.Interface, next.Address, next.Duration); err != nil {
			n.cfg.Log.Error("refresh address lifetime", "err", err)
		}
		l = next
	}
}

// renew waits until T1 and renews, retrying until the lease expires; then
// it requests a new lease without an attempt bound. ok is false when ctx
// ended.
func (n *netup) renew(ctx context.Context, l Lease) (Lease, bool) {
	if !n.wait(ctx, l.Renew) {
		return Lease{}, false
	}
	backoff := minBackoff
	for {
		left := l.Duration - n.cfg.Clock.Now().Sub(l.Acquired)
		if left <= 0 {
			n.cfg.Log.Warn("dhcp lease expired; rebinding", "lease", l.String())
			next, err := n.request(ctx, 0)
			return next, err == nil
		}
		actx, cancel := context.WithTimeout(ctx, min(n.cfg.AttemptTimeout, left))
		ack, err := n.cfg.DHCP.Renew(actx)
		cancel()
		if err == nil {
			next, perr := LeaseFromACK(ack, n.cfg.Clock.Now())
			if perr == nil {
				n.cfg.Log.Debug("dhcp renewed", "lease", next.String())
				return next, true
			}
			err = perr
		}
		n.cfg.Log.Warn("dhcp renew failed", "err", err)
		if !n.wait(ctx, min(backoff, max(left, time.Millisecond))) {
			return Lease{}, false
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// writeFileAtomic replaces path with data (temporary file + rename).
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".resolv-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
