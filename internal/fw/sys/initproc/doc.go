// Package initproc does the duties of PID 1 on the device: the boot steps
// (pseudo file systems, /dev/fd links, the open-file limit, hostname), the persistent data
// partition, reaping orphans, the shutdown signals, and sync + power off or
// reboot with direct syscalls. It never shells out.
//
// Boot steps are data (in the style of u-root's libinit): a list of Step
// values (Mount, Symlink, FileLimit, Hostname, Setting), run in order by
// Init.Boot.
// Every error says which step failed ("mount devtmpfs on /dev: ...").
//
// All system calls go through the Syscalls interface, so the logic runs on
// a development host against initproctest.Sys, which records what would
// have happened. Linux is the real implementation (package-level variable
// free: construct it with New(nil)).
//
// Shutdown signals follow busybox init (the convention gokrazy and most
// embedded Linux userlands use, so `kill -USR2 1` means the same everywhere):
//
//	SIGTERM  reboot
//	SIGINT   reboot   (ctrl-alt-del, once Boot turned CAD off)
//	SIGUSR1  halt
//	SIGUSR2  power off
//
// PID 1 must never return: the kernel panics if it does. After Shutdown,
// Forever blocks for good (Shutdown only returns when the reboot syscall
// failed).
//
// Reaping uses Wait4(-1, WNOHANG), which also collects the children of
// os/exec: the firmware starts no child processes, and must not while
// Supervise runs.
package initproc
