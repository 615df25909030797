//go:build zmfirmware

package main

import (
	"context"
	"errors"
	"io"
)

// runCmd is host mode's place in the firmware build, which leaves host
// mode out (run.go says why).
func runCmd(context.Context, []string, io.Reader, io.Writer, io.Writer) error {
	return errors.New("run: this is the firmware build (-tags zmfirmware), without host mode; build cmd/zmonitor without the tag to run the device on a host")
}
