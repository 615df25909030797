// Package netnstest gives tests a veth pair between two private network
// namespaces (a "server" and a "client" side), so that code which
// configures interfaces or speaks raw DHCP runs against the real kernel
// without touching the host's own network. It needs root and iproute2; the
// tests skip otherwise (and with -short).
package netnstest
