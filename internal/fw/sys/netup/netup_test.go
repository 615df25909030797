package netup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
)

// ack builds a DHCPACK like QEMU's user-mode network sends.
func ack(t testing.TB, ip string, lease time.Duration, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	base := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
		dhcpv4.WithYourIP(net.ParseIP(ip)),
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithRouter(net.ParseIP("10.0.2.2")),
		dhcpv4.WithDNS(net.ParseIP("10.0.2.3")),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("10.0.2.2"))),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(lease)),
	}
	p, err := dhcpv4.New(append(base, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeLinks records calls.
type fakeLinks struct {
	mu    sync.Mutex
	calls []string
	fail  map[string]error
}

func (f *fakeLinks) rec(c string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	return f.fail[c]
}
func (f *fakeLinks) Up(n string) error { return f.rec("up " + n) }
func (f *fakeLinks) SetAddr(n string, p netip.Prefix, d time.Duration) error {
	return f.rec(fmt.Sprintf("addr %s %s %v", n, p, d))
}
func (f *fakeLinks) DelAddr(n string, p netip.Prefix) error {
	return f.rec(fmt.Sprintf("del %s %s", n, p))
}
func (f *fakeLinks) SetDefaultRoute(n string, gw netip.Addr) error {
	return f.rec(fmt.Sprintf("route %s %s", n, gw))
}
func (f *fakeLinks) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// result is one scripted DHCP answer.
type result struct {
	ack *dhcpv4.DHCPv4
	err error
}

// fakeDHCP answers from scripts and records when it was asked.
type fakeDHCP struct {
	clk      *clocktest.Fake
	mu       sync.Mutex
	requests []result
	renews   []result
	reqAt    []time.Time
	renewAt  []time.Time
	closed   chan struct{}
}

func newFakeDHCP(clk *clocktest.Fake) *fakeDHCP {
	return &fakeDHCP{clk: clk, closed: make(chan struct{})}
}

var errNoAnswer = errors.New("no answer")

func next(script *[]result) (*dhcpv4.DHCPv4, error) {
	if len(*script) == 0 {
		return nil, errNoAnswer
	}
	r := (*script)[0]
	*script = (*script)[1:]
	return r.ack, r.err
}

func (f *fakeDHCP) Request(ctx context.Context) (*dhcpv4.DHCPv4, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqAt = append(f.reqAt, f.clk.Now())
	return next(&f.requests)
}

func (f *fakeDHCP) Renew(ctx context.Context) (*dhcpv4.DHCPv4, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.renewAt = append(f.renewAt, f.clk.Now())
	return next(&f.renews)
}

func (f *fakeDHCP) Close() error { close(f.closed); return nil }

func (f *fakeDHCP) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqAt), len(f.renewAt)
}

// waitTimer yields until the code under test has armed a timer (it runs in
// another goroutine); it never sleeps.
func waitTimer(t *testing.T, clk *clocktest.Fake) {
	t.Helper()
	for i := 0; clk.Timers() == 0; i++ {
		if i > 10_000_000 {
			t.Fatal("no timer armed")
		}
		runtime.Gosched()
	}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func setup(t *testing.T) (*clocktest.Fake, *fakeLinks, *fakeDHCP, Config) {
	clk := clocktest.New(t0)
	links := &fakeLinks{}
	d := newFakeDHCP(clk)
	return clk, links, d, Config{Interface: "eth0", Clock: clk, Links: links, DHCP: d,
		ResolvConf: filepath.Join(t.TempDir(), "resolv.conf")}
}

func TestUpConfiguresLease(t *testing.T) {
	_, links, d, cfg := setup(t)
	d.requests = []result{{ack: ack(t, "10.0.2.15", 24*time.Hour)}}
	ctx, cancel := context.WithCancel(context.Background())
	l, err := Up(ctx, cfg)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	if l.Address != netip.MustParsePrefix("10.0.2.15/24") || l.Router != netip.MustParseAddr("10.0.2.2") || l.Renew != 12*time.Hour {
		t.Errorf("lease %+v", l)
	}
	want := []string{"up lo", "up eth0", "addr eth0 10.0.2.15/24 24h0m0s", "route eth0 10.0.2.2"}
	if got := links.Calls(); !slices.Equal(got, want) {
		t.Errorf("links %q, want %q", got, want)
	}
	rc, err := os.ReadFile(cfg.ResolvConf)
	if err != nil || !strings.Contains(string(rc), "nameserver 10.0.2.3\n") {
		t.Errorf("resolv.conf %q, %v", rc, err)
	}
	cancel()
	<-d.closed // the renewal goroutine ends with the context
}

func TestUpRetriesWithBackoff(t *testing.T) {
	clk, _, d, cfg := setup(t)
	d.requests = []result{{err: errNoAnswer}, {ack: ack(t, "10.0.2.15", time.Hour, dhcpv4.WithMessageType(dhcpv4.MessageTypeNak))}, {ack: ack(t, "10.0.2.15", time.Hour)}}
	var logged bytes.Buffer
	cfg.Log = slog.New(slog.NewTextHandler(&logged, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := Up(ctx, cfg); done <- err }()
	waitTimer(t, clk)
	clk.Advance(time.Second)
	waitTimer(t, clk)
	clk.Advance(2 * time.Second)
	if err := <-done; err != nil {
		t.Fatalf("Up: %v", err)
	}
	want := []time.Time{t0, t0.Add(time.Second), t0.Add(3 * time.Second)}
	if !slices.Equal(d.reqAt, want) {
		t.Errorf("requests at %v, want %v", d.reqAt, want)
	}
	// The lease line says how long the exchange took (make bench-qemu
	// reports it from the board's console).
	if !strings.Contains(logged.String(), `msg="dhcp lease" iface=eth0 lease="10.0.2.15/24 via 10.0.2.2 from 10.0.2.2 for 1h0m0s" attempts=3 took=3s`) {
		t.Errorf("log:\n%s", logged.String())
	}
}

func TestUpGivesUp(t *testing.T) {
	clk, _, d, cfg := setup(t)
	cfg.Attempts = 2
	done := make(chan error, 1)
	go func() { _, err := Up(context.Background(), cfg); done <- err }()
	waitTimer(t, clk)
	clk.Advance(time.Second)
	err := <-done
	if !errors.Is(err, errNoAnswer) || !strings.Contains(err.Error(), "2 attempts failed") {
		t.Fatalf("Up: %v", err)
	}
	<-d.closed
}

func TestUpLinkError(t *testing.T) {
	_, links, _, cfg := setup(t)
	links.fail = map[string]error{"up eth0": errors.New("no such device")}
	if _, err := Up(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "link eth0 up") {
		t.Fatalf("Up: %v", err)
	}
	if _, err := Up(context.Background(), Config{}); err == nil {
		t.Fatal("Up without an interface name succeeded")
	}
}

func TestRenewalChangesAddress(t *testing.T) {
	clk, links, d, cfg := setup(t)
	d.requests = []result{{ack: ack(t, "10.0.2.15", 100*time.Second)}}
	d.renews = []result{{ack: ack(t, "10.0.2.16", 100*time.Second)}}
	got := make(chan Lease, 1)
	cfg.OnLease = func(l Lease) { got <- l }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := Up(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	waitTimer(t, clk)
	clk.Advance(50 * time.Second) // T1
	l := <-got
	if l.Address != netip.MustParsePrefix("10.0.2.16/24") {
		t.Errorf("renewed lease %v", l)
	}
	if _, renews := d.counts(); renews != 1 || d.renewAt[0] != t0.Add(50*time.Second) {
		t.Errorf("renewed at %v, want once at T1", d.renewAt)
	}
	calls := links.Calls()
	if !slices.Contains(calls, "del eth0 10.0.2.15/24") || !slices.Contains(calls, "addr eth0 10.0.2.16/24 1m40s") {
		t.Errorf("links after renewal %q", calls)
	}
}

func TestRebindAfterExpiry(t *testing.T) {
	clk, _, d, cfg := setup(t)
	d.requests = []result{{ack: ack(t, "10.0.2.15", 20*time.Second)}, {ack: ack(t, "10.0.2.17", time.Hour)}}
	got := make(chan Lease, 1)
	cfg.OnLease = func(l Lease) { got <- l }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := Up(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	// T1 at 10 s, then renewals fail (no answers scripted) with backoff
	// 1 s, 2 s, 4 s, capped by the time left, until the lease runs out.
	advances, spins := 0, 0
	for {
		select {
		case l := <-got:
			if l.Address != netip.MustParsePrefix("10.0.2.17/24") {
				t.Fatalf("rebound lease %v", l)
			}
			if reqs, renews := d.counts(); reqs != 2 || renews < 2 {
				t.Errorf("%d requests, %d renewals", reqs, renews)
			}
			return
		default:
		}
		if advances > 100 || spins > 10_000_000 {
			t.Fatalf("never rebound (%d s advanced)", advances)
		}
		if clk.Timers() == 0 {
			spins++
			runtime.Gosched()
			continue
		}
		advances++
		clk.Advance(time.Second)
	}
}

func TestLeaseFromACK(t *testing.T) {
	good, err := LeaseFromACK(ack(t, "10.0.2.15", time.Hour,
		dhcpv4.WithDNS(net.ParseIP("10.0.2.3"), net.ParseIP("0.0.0.0"), net.ParseIP("1.1.1.1"), net.ParseIP("8.8.8.8"), net.ParseIP("9.9.9.9")),
		dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(10*time.Minute))), t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(good.DNS) != 3 || good.DNS[1] != netip.MustParseAddr("1.1.1.1") || good.Renew != 10*time.Minute || good.Server != netip.MustParseAddr("10.0.2.2") {
		t.Errorf("lease %+v", good)
	}
	if s := good.String(); s != "10.0.2.15/24 via 10.0.2.2 from 10.0.2.2 for 1h0m0s" {
		t.Errorf("String %q", s)
	}
	short, err := LeaseFromACK(ack(t, "10.0.2.15", time.Second), t0)
	if err != nil || short.Duration != minLease || short.Renew != minLease/2 {
		t.Errorf("short lease %+v %v", short, err)
	}
	for name, p := range map[string]*dhcpv4.DHCPv4{
		"nak":         ack(t, "10.0.2.15", time.Hour, dhcpv4.WithMessageType(dhcpv4.MessageTypeNak)),
		"zero ip":     ack(t, "0.0.0.0", time.Hour),
		"broadcast":   ack(t, "255.255.255.255", time.Hour),
		"multicast":   ack(t, "224.0.0.1", time.Hour),
		"bad mask":    ack(t, "10.0.2.15", time.Hour, dhcpv4.WithNetmask(net.IPMask{255, 0, 255, 0})),
		"/32 mask":    ack(t, "10.0.2.15", time.Hour, dhcpv4.WithNetmask(net.CIDRMask(32, 32))),
		"far router":  ack(t, "10.0.2.15", time.Hour, dhcpv4.WithRouter(net.ParseIP("192.168.1.1"))),
		"self router": ack(t, "10.0.2.15", time.Hour, dhcpv4.WithRouter(net.ParseIP("10.0.2.15"))),
	} {
		if l, err := LeaseFromACK(p, t0); err == nil {
			t.Errorf("%s: accepted %v", name, l)
		}
	}
	if _, err := LeaseFromACK(nil, t0); err == nil {
		t.Error("nil ACK accepted")
	}
}

func TestResolvConf(t *testing.T) {
	if ResolvConf(Lease{}) != nil {
		t.Error("resolv.conf without servers")
	}
	got := string(ResolvConf(Lease{DNS: []netip.Addr{netip.MustParseAddr("10.0.2.3")}}))
	if !strings.HasSuffix(got, "\nnameserver 10.0.2.3\n") {
		t.Errorf("resolv.conf %q", got)
	}
}

func FuzzParseACK(f *testing.F) {
	f.Add(ack(f, "10.0.2.15", time.Hour).ToBytes())
	f.Add(ack(f, "10.0.2.15", time.Hour, dhcpv4.WithNetmask(net.IPMask{255, 0, 255, 0})).ToBytes())
	f.Add([]byte{})
	f.Add(make([]byte, 240))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseACK(b, t0)
		if err != nil {
			return
		}
		if !l.Address.IsValid() || !l.Address.Addr().Is4() || l.Duration < minLease || l.Renew <= 0 || l.Renew >= l.Duration || len(l.DNS) > maxDNS {
			t.Fatalf("accepted an unusable lease %+v", l)
		}
		if l.Router.IsValid() && !l.Address.Masked().Contains(l.Router) {
			t.Fatalf("router %v outside %v", l.Router, l.Address)
		}
	})
}

func BenchmarkParseACK(b *testing.B) {
	p := ack(b, "10.0.2.15", time.Hour).ToBytes()
	for b.Loop() {
		if _, err := ParseACK(p, t0); err != nil {
			b.Fatal(err)
		}
	}
}
