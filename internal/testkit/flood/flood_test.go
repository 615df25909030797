package flood_test

import (
	"net"
	"testing"

	"github.com/zmonitor/firmware/internal/testkit/flood"
)

// The flood makes exactly Limit connections, whatever the server does with
// them.
func TestLimit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close() // refused at once
		}
	}()
	cert, err := flood.SelfSigned("anyone")
	if err != nil {
		t.Fatal(err)
	}
	f := flood.Start(flood.Config{Addr: ln.Addr().String(), Cert: cert, Workers: 4, Limit: 50})
	f.Wait()
	if f.Attempts() != 50 {
		t.Errorf("%d connections, want 50", f.Attempts())
	}
	f.Stop()
}
