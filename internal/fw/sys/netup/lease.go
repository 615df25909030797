package netup

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Lease is what the DHCP server granted.
type Lease struct {
	// Address is the leased address with the subnet's prefix length.
	Address netip.Prefix
	// Router is the default gateway; invalid when the server sent none.
	Router netip.Addr
	// DNS are the name servers, in the server's order.
	DNS []netip.Addr
	// Server is the DHCP server's identifier.
	Server netip.Addr
	// Duration is the lease time; Renew (T1) is when to renew.
	Duration, Renew time.Duration
	// Acquired is when the ACK arrived (monotonic clock reading).
	Acquired time.Time
}

// String describes the lease for logs.
func (l Lease) String() string {
	return fmt.Sprintf("%s via %s from %s for %v", l.Address, l.Router, l.Server, l.Duration)
}

// Equal reports whether two leases configure the interface the same way.
func (l Lease) Equal(o Lease) bool {
	if l.Address != o.Address || l.Router != o.Router || len(l.DNS) != len(o.DNS) {
		return false
	}
	for i := range l.DNS {
		if l.DNS[i] != o.DNS[i] {
			return false
		}
	}
	return true
}

// Bounds applied to what a server says.
const (
	minLease     = 10 * time.Second
	defaultLease = time.Hour
	maxDNS       = 3 // what resolv.conf honours
)

// ParseACK decodes a DHCPv4 packet that must be an ACK and returns its
// lease, acquired at now.
func ParseACK(b []byte, now time.Time) (Lease, error) {
	p, err := dhcpv4.FromBytes(b)
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp: decode: %w", err)
	}
	return LeaseFromACK(p, now)
}

// LeaseFromACK checks a DHCPACK and extracts the lease.
func LeaseFromACK(ack *dhcpv4.DHCPv4, now time.Time) (Lease, error) {
	if ack == nil {
		return Lease{}, errors.New("dhcp: no ACK")
	}
	if t := ack.MessageType(); t != dhcpv4.MessageTypeAck {
		return Lease{}, fmt.Errorf("dhcp: message type %v, want ACK", t)
	}
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr)
	ip = ip.Unmap()
	if !ok || !ip.Is4() || ip.IsUnspecified() || ip.IsMulticast() || ip.IsLoopback() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return Lease{}, fmt.Errorf("dhcp: leased address %v is not a usable IPv4 unicast address", ack.YourIPAddr)
	}
	mask := ack.SubnetMask()
	bits := 24 // RFC 2132 leaves it to the client; QEMU always sends one
	if mask != nil {
		ones, size := mask.Size()
		if size != 32 || ones == 0 || ones > 30 {
			return Lease{}, fmt.Errorf("dhcp: subnet mask %v is not a contiguous IPv4 mask of /1../30", net.IP(mask))
		}
		bits = ones
	}
	l := Lease{Address: netip.PrefixFrom(ip, bits), Acquired: now}
	if rs := ack.Router(); len(rs) > 0 {
		r, ok := netip.AddrFromSlice(rs[0])
		r = r.Unmap()
		if !ok || !r.Is4() || !l.Address.Masked().Contains(r) || r == ip {
			return Lease{}, fmt.Errorf("dhcp: router %v is not another address on %v", rs[0], l.Address.Masked())
		}
		l.Router = r
	}
	for _, d := range ack.DNS() {
		a, ok := netip.AddrFromSlice(d)
		a = a.Unmap()
		if !ok || !a.Is4() || a.IsUnspecified() || a.IsMulticast() {
			continue // a bad entry is not worth losing the lease over
		}
		if len(l.DNS) < maxDNS {
			l.DNS = append(l.DNS, a)
		}
	}
	if s, ok := netip.AddrFromSlice(ack.ServerIdentifier()); ok {
		l.Server = s.Unmap()
	}
	l.Duration = ack.IPAddressLeaseTime(defaultLease)
	if l.Duration < minLease {
		l.Duration = minLease
	}
	l.Renew = ack.IPAddressRenewalTime(l.Duration / 2)
	if l.Renew <= 0 || l.Renew >= l.Duration {
		l.Renew = l.Duration / 2
	}
	return l, nil
}

// ResolvConf renders the lease's name servers as resolv.conf; nil when
// there are none.
func ResolvConf(l Lease) []byte {
	if len(l.DNS) == 0 {
		return nil
	}
	var b bytes.Buffer
	b.WriteString("# written by zmonitor from the DHCP lease\n")
	for _, d := range l.DNS {
		fmt.Fprintf(&b, "nameserver %s\n", d)
	}
	return b.Bytes()
}
