// Package netup brings the device's network up: the loopback and the
// board's interface (rtnetlink, through internal/fw/sys/rtnl), DHCPv4
// (github.com/insomniacslk/dhcp's nclient4: its packet socket until the
// address is configured, then a kernel UDP socket bound to the interface
// for unicast renewals), the leased address and default route, and DNS
// servers into a resolv.conf. It retries with bounded backoff, and renews
// the lease in the background until the context ends. Each DHCP exchange
// opens its own nclient4 client and closes it: no socket is open, and no
// goroutine reads frames, while the lease runs.
//
// The kernel side (netlink) and the DHCP exchange are behind the Links and
// DHCP interfaces, so the policy — retries, backoff, renewal at T1,
// rebinding after expiry, address changes — is tested on the host with
// fakes and a fake clock. The real path (rtnl + nclient4) is tested on
// the host against an in-process server4 DHCP server over a veth pair
// between two private network namespaces (root only), and in QEMU by the
// qemu package's boot test: QEMU's user-mode network serves DHCP, the guest
// gets 10.0.2.15/24 — and with restrict=on no router and no DNS option.
//
// Up must be called from the network namespace the interface lives in;
// its renewal goroutine runs on any thread of the process (the device has
// one namespace).
package netup
