package netnstest

import (
	"net"
	"testing"
)

func TestPair(t *testing.T) {
	p := New(t, "nt")
	var addrs []net.Addr
	if err := In(p.ServerNS, func() error {
		ifc, err := net.InterfaceByName(p.ServerIf)
		if err != nil {
			return err
		}
		addrs, err = ifc.Addrs()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(addrs) == 0 || addrs[0].String() != p.ServerAddr {
		t.Errorf("server side addresses %v, want %s", addrs, p.ServerAddr)
	}
	if err := In(p.ClientNS, func() error { _, err := net.InterfaceByName(p.ServerIf); return err }); err == nil {
		t.Error("the server's interface is visible from the client namespace")
	}
	if _, err := net.InterfaceByName(p.ClientIf); err == nil {
		t.Error("the pair leaked into the host namespace")
	}
}
