package qemu

import (
	"strings"
	"testing"
	"time"
)

// Two commands as QEMU logs them (FIFO words little-endian, the command
// big-endian): TPM2_Startup(CLEAR) and a PCR_Extend of PCR 7 (only its
// header and handle written before "go").
const sampleTrace = `123@1796675053.889411:tpm_tis_mmio_write write.1(0x00000000) = 0x00000002
123@1796675053.894724:tpm_tis_mmio_write write.1(0x00000018) = 0x00000040
123@1796675053.894800:tpm_tis_mmio_write write.4(0x00000024) = 0x00000180
123@1796675053.894801:tpm_tis_mmio_write write.4(0x00000024) = 0x00000c00
123@1796675053.894802:tpm_tis_mmio_write write.4(0x00000024) = 0x00004401
123@1796675053.900000:tpm_tis_mmio_write write.1(0x00000018) = 0x00000020
garbage line
123@1796675054.000001:tpm_tis_mmio_write write.1(0x00000018) = 0x00000040
123@1796675054.000002:tpm_tis_mmio_write write.2(0x00000024) = 0x0280
123@1796675054.000003:tpm_tis_mmio_write write.4(0x00000024) = 0x00000000
123@1796675054.000004:tpm_tis_mmio_write write.4(0x00000024) = 0x82010000
123@1796675054.000005:tpm_tis_mmio_write write.4(0x00000024) = 0x07000000
123@1796675054.250000:tpm_tis_mmio_write write.1(0x00000018) = 0x00000020
`

func TestReadTPMTrace(t *testing.T) {
	cmds, err := ReadTPMTrace(strings.NewReader(sampleTrace))
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 2 {
		t.Fatalf("%d commands: %+v", len(cmds), cmds)
	}
	if c := cmds[0]; c.Code != TPMStartup || c.Size != 12 || !c.At.Equal(time.Unix(1796675053, 900000000)) {
		t.Errorf("first = %+v", c)
	}
	if c := cmds[1]; c.Code != TPMPCRExtend || c.Handle != 7 || c.Size != 14 {
		t.Errorf("second = %+v", c)
	}
}

func FuzzReadTPMTrace(f *testing.F) {
	f.Add([]byte(sampleTrace))
	f.Add([]byte("1@1.000000:tpm_tis_mmio_write write.4(0x00000024) = 0xffffffffffffffff\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cmds, _ := ReadTPMTrace(strings.NewReader(string(b)))
		for _, c := range cmds {
			if c.Size < 10 || c.Size > maxCommand {
				t.Fatalf("command of %d bytes", c.Size)
			}
		}
	})
}
