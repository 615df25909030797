// Package boot brings the firmware up, from PID 1's first instant to the
// provisioning engine running, as a named, staged plan: the steps are data
// (a name, the fault the panel shows if the step fails, and what it does),
// in the spirit of u-root's libinit and internal/fw/sys/initproc. Each
// step's end is traced (zmonitor.verbose=1) and a failed step's error
// starts with its name.
//
// Two plans run one after the other:
//
//   - firmwarePlan (PID1, only on the board): the pseudo file systems, the
//     kernel command line, the log, the init steps, the board profile; the
//     button and the display and console opening in the background while
//     the data partition mounts; the network.
//   - devicePlan (also Run, for `zmonitor run` on a development host and
//     the tests): the identity, the settings, the first frame, the audit
//     log, the keys, the start state, the trust anchors, the engine, the
//     console, and the engine running with the button and the console.
//
// The package makes the firmware's one Screen (screenMaker: fonts parsed
// from the first instant, the first frame rendered ahead from the kernel
// command line's identity) and its one decision on where the device
// starts (firstFrame): UNPROVISIONED is drawn as soon as the settings say
// so, without waiting for the TPM; committed settings are confirmed against
// the key store's committed client key once the keys are loaded. The engine
// is handed that start (engine.Options.Start) and does not decide again;
// engine.StartView is the one definition of the view it starts on, which
// the plan draws or renders ahead.
//
// The plans' order is the boot time's (docs/qemu.md, "Where the boot time
// goes"): the keys, the trust anchors and the audit log load only once the
// first frame is decided; the step list shows it and a test pins it.
package boot
