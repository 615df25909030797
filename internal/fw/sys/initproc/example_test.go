package initproc_test

import (
	"context"
	"fmt"
	"os"
	"syscall"

	"github.com/zmonitor/firmware/internal/fw/sys/initproc"
	"github.com/zmonitor/firmware/internal/fw/sys/initproc/initproctest"
)

// The PID 1 sequence as cmd/zmonitor wires it (here on the recording fake;
// on the device Opts.Sys is nil and the signals come from Notify, and
// Forever follows a failed Shutdown).
func Example() {
	sys := &initproctest.Sys{PID: 1, Files: map[string][]byte{"/dev/vda": ext4Image()}}
	p := initproc.New(&initproc.Opts{Sys: sys})
	if !p.IsPID1() {
		return // development host: no mounts, no shutdown
	}
	if err := p.Boot(initproc.DefaultSteps("zm-0001")); err != nil {
		fmt.Println(err)
	}
	if err := p.MountData(initproc.Data{Device: "/dev/vda", Mount: "/data", FSType: "ext4"}); err != nil {
		fmt.Println(err)
	}
	sigs := make(chan os.Signal, 1) // initproc.Notify() on the device
	sigs <- syscall.SIGUSR2
	how := p.Supervise(context.Background(), sigs)
	if err := p.Shutdown(how, "/data"); err != nil {
		fmt.Println(err)
		// initproc.Forever()
	}
	fmt.Println(how, len(sys.Recorded()), "calls")
	// Output: power off 25 calls
}
