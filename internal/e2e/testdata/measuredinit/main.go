// Command measuredinit is the /init of the measured-boot test
// (internal/e2e, TestMeasuredBootMatchesManifest): it prints the SHA-256
// values of PCR 4 and 7 read from the TPM and the firmware's event log
// (base64) on the console, then powers off. It is not part of the firmware.
package main

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
	"golang.org/x/sys/unix"
)

func main() {
	if err := run(); err != nil {
		fmt.Printf("measured: error: %v\n", err)
	}
	fmt.Println("measured: done")
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

func run() error {
	for _, m := range []struct{ fstype, target string }{
		{"devtmpfs", "/dev"}, {"sysfs", "/sys"}, {"securityfs", "/sys/kernel/security"},
	} {
		if err := unix.Mount(m.fstype, m.target, m.fstype, 0, ""); err != nil {
			return fmt.Errorf("mount %s: %w", m.target, err)
		}
	}
	log, err := os.ReadFile("/sys/kernel/security/tpm0/binary_bios_measurements")
	if err != nil {
		return err
	}
	t, err := linuxtpm.Open("/dev/tpmrm0")
	if err != nil {
		return err
	}
	defer t.Close()
	sel := tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
		Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(4, 7),
	}}}
	rsp, err := tpm2.PCRRead{PCRSelectionIn: sel}.Execute(t)
	if err != nil {
		return fmt.Errorf("PCR_Read: %w", err)
	}
	if len(rsp.PCRValues.Digests) != 2 {
		return fmt.Errorf("PCR_Read: %d digests, want 2", len(rsp.PCRValues.Digests))
	}
	fmt.Printf("measured: pcr4=%s pcr7=%s\n", hex.EncodeToString(rsp.PCRValues.Digests[0].Buffer), hex.EncodeToString(rsp.PCRValues.Digests[1].Buffer))
	fmt.Printf("measured: eventlog=%s\n", base64.StdEncoding.EncodeToString(log))
	return nil
}
