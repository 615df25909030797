package boot

import "strings"

// kernelArgs are the zmonitor.* parameters of the kernel command line.
type kernelArgs struct {
	deviceID, serial, label string
	verbose                 bool
}

func parseCmdline(s string) kernelArgs {
	var k kernelArgs
	for _, f := range strings.Fields(s) {
		name, val, _ := strings.Cut(f, "=")
		switch name {
		case "zmonitor.device_id":
			k.deviceID = val
		case "zmonitor.serial":
			k.serial = val
		case "zmonitor.label":
			k.label = val
		case "zmonitor.verbose":
			k.verbose = val == "1"
		}
	}
	return k
}
