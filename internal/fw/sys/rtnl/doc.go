// Package rtnl is the handful of rtnetlink requests the firmware needs to
// configure its one interface from a DHCP lease: set the link up, replace or
// delete an IPv4 address (with its lifetime), replace the IPv4 default
// route. Each request asks for the kernel's acknowledgement and returns its
// error.
//
// It replaces github.com/vishvananda/netlink in the firmware: that library
// covers all of rtnetlink and cost about 260 KB of the static arm64 binary
// for these four messages. The message layouts are in rtnetlink(7) and
// <linux/if_addr.h>, <linux/rtnetlink.h>; the constants come from
// golang.org/x/sys/unix.
package rtnl
