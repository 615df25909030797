package initproc

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// ShutdownFor maps a signal to the shutdown it asks for (see the package
// documentation); ok is false for other signals.
func ShutdownFor(sig os.Signal) (how How, ok bool) {
	switch sig {
	case syscall.SIGTERM, syscall.SIGINT:
		return Reboot, true
	case syscall.SIGUSR1:
		return Halt, true
	case syscall.SIGUSR2:
		return PowerOff, true
	}
	return 0, false
}

// Signals are the signals Supervise handles.
var signals = []os.Signal{syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGUSR2}

// Notify starts delivering the signals PID 1 handles to a new channel.
// Call it early in Boot so no SIGCHLD is lost; stop it with signal.Stop.
func Notify() chan os.Signal {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, signals...)
	return ch
}

// Supervise reaps orphans whenever SIGCHLD arrives (and once at start) and
// returns the shutdown asked for by a signal, or 0 when ctx ends.
func (p *Init) Supervise(ctx context.Context, sigs <-chan os.Signal) How {
	p.Reap()
	for {
		select {
		case <-ctx.Done():
			return 0
		case sig := <-sigs:
			if sig == syscall.SIGCHLD {
				p.Reap()
				continue
			}
			if how, ok := ShutdownFor(sig); ok {
				p.log.Info("shutdown signal", "signal", sig.String(), "how", how.String())
				return how
			}
		}
	}
}

// Reap collects every exited child without blocking and returns how many.
func (p *Init) Reap() int {
	n := 0
	for {
		var ws unix.WaitStatus
		pid, err := p.sys.Wait4(-1, &ws, unix.WNOHANG)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			// ECHILD: no children; 0: children, none exited.
			return n
		}
		n++
		p.log.Debug("reaped", "pid", pid, "status", int(ws))
	}
}
