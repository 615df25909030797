package tpmcount

import (
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// names of the commands the key store sends (go-tpm's TPMCC has no String).
var names = map[tpm2.TPMCC]string{
	tpm2.TPMCCStartup:           "Startup",
	tpm2.TPMCCGetCapability:     "GetCapability",
	tpm2.TPMCCCreatePrimary:     "CreatePrimary",
	tpm2.TPMCCCreate:            "Create",
	tpm2.TPMCCLoad:              "Load",
	tpm2.TPMCCImport:            "Import",
	tpm2.TPMCCEvictControl:      "EvictControl",
	tpm2.TPMCCReadPublic:        "ReadPublic",
	tpm2.TPMCCSign:              "Sign",
	tpm2.TPMCCECDHZGen:          "ECDH_ZGen",
	tpm2.TPMCCFlushContext:      "FlushContext",
	tpm2.TPMCCDuplicate:         "Duplicate",
	tpm2.TPMCCStartAuthSession:  "StartAuthSession",
	tpm2.TPMCCPolicyCommandCode: "PolicyCommandCode",
	tpm2.TPMCCNVDefineSpace:     "NV_DefineSpace",
	tpm2.TPMCCNVReadPublic:      "NV_ReadPublic",
	tpm2.TPMCCNVRead:            "NV_Read",
	tpm2.TPMCCNVWrite:           "NV_Write",
	tpm2.TPMCCCertify:           "Certify",
	tpm2.TPMCCPCRRead:           "PCR_Read",
	tpm2.TPMCCQuote:             "Quote",
}

// Name is the TPM2_ command name of cc without its prefix ("Sign"), or
// its hex code for commands the key store does not send.
func Name(cc tpm2.TPMCC) string {
	if n, ok := names[cc]; ok {
		return n
	}
	return fmt.Sprintf("CC_0x%03x", uint32(cc))
}
