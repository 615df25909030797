package qemu

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"time"
)

// TPMCommand is one TPM command the guest sent, as QEMU's TIS emulation saw
// it.
type TPMCommand struct {
	// At is when the guest told the TPM to run it (TIS tpmGo), host time.
	At time.Time
	// Code is the command code (TPM_CC), e.g. 0x182 for TPM2_PCR_Extend.
	Code uint32
	// Handle is the first handle after the header: the PCR for a
	// PCR_Extend.
	Handle uint32
	// Size is the command's length in bytes.
	Size int
}

// Command codes the boot phases are read from.
const (
	TPMStartup             = 0x144
	TPMPCRExtend           = 0x182
	TPMGetCapability       = 0x17a
	TPMHierarchyChangeAuth = 0x129
)

// TIS register offsets (within a locality's 4 KiB page) and status bits.
const (
	tisSTS          = 0x18
	tisDataFIFO     = 0x24
	tisCommandReady = 0x40
	tisGo           = 0x20
)

// traceLineRE matches a tpm_tis_mmio_write line with -msg timestamp=on:
// "PID@SECONDS.MICROS:tpm_tis_mmio_write write.SIZE(0xOFFSET) = 0xVALUE".
var traceLineRE = regexp.MustCompile(`^\d+@(\d+)\.(\d{6}):tpm_tis_mmio_write write\.([1-4])\(0x([0-9a-f]+)\) = 0x([0-9a-f]+)`)

// maxCommand bounds a command being collected (a TPM's buffer is 4 KiB).
const maxCommand = 4096

// ReadTPMTrace reads the commands from a Config.TraceTPM log: the bytes
// written to the data FIFO between "command ready" and "go". Lines of
// other events and malformed lines are skipped.
func ReadTPMTrace(r io.Reader) ([]TPMCommand, error) {
	var cmds []TPMCommand
	var cur []byte
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		m := traceLineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		sec, err1 := strconv.ParseInt(m[1], 10, 64)
		usec, err2 := strconv.ParseInt(m[2], 10, 64)
		size, _ := strconv.Atoi(m[3])
		off, err3 := strconv.ParseUint(m[4], 16, 32)
		val, err4 := strconv.ParseUint(m[5], 16, 64)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || sec > math.MaxInt64/int64(time.Second) {
			continue
		}
		switch off & 0xfff {
		case tisSTS:
			switch val {
			case tisCommandReady:
				cur = cur[:0]
			case tisGo:
				if len(cur) < 10 {
					continue
				}
				c := TPMCommand{At: time.Unix(sec, usec*1000), Code: binary.BigEndian.Uint32(cur[6:10]), Size: len(cur)}
				if len(cur) >= 14 {
					c.Handle = binary.BigEndian.Uint32(cur[10:14])
				}
				cmds = append(cmds, c)
				cur = cur[:0]
			}
		case tisDataFIFO:
			for i := 0; i < size && len(cur) < maxCommand; i++ {
				cur = append(cur, byte(val>>(8*i)))
			}
		}
	}
	if err := sc.Err(); err != nil {
		return cmds, fmt.Errorf("tpm trace: %w", err)
	}
	return cmds, nil
}
