// Package fakeak is a software stand-in for a TPM's attestation key, for
// tests of code that checks attestation evidence without a TPM: it makes
// the TPM wire structures a TPM would (TPMT_PUBLIC of the attestation
// template, TPM2_Certify and TPM2_Quote TPMS_ATTEST, TPMT_SIGNATURE) and
// signs them with keys in memory. Test code only; nothing here protects
// keys. The real TPM's output is tested in drivers/tpm.
package fakeak
