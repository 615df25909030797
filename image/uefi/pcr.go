package uefi

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"
)

// GUID is an EFI GUID in its in-memory byte order (the first three fields
// little-endian).
type GUID [16]byte

// ParseGUID reads the text form "8be4df61-93ca-11d2-aa0d-00e098032b8c".
func ParseGUID(s string) (GUID, error) {
	var g GUID
	var a uint32
	var b, c uint16
	var d [8]byte
	if len(s) != 36 {
		return g, fmt.Errorf("guid %q: want 36 characters", s)
	}
	n, err := fmt.Sscanf(s, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		&a, &b, &c, &d[0], &d[1], &d[2], &d[3], &d[4], &d[5], &d[6], &d[7])
	if err != nil || n != 11 {
		return g, fmt.Errorf("guid %q: not in the 8-4-4-4-12 hex form", s)
	}
	binary.LittleEndian.PutUint32(g[0:], a)
	binary.LittleEndian.PutUint16(g[4:], b)
	binary.LittleEndian.PutUint16(g[6:], c)
	copy(g[8:], d[:])
	return g, nil
}

func mustGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

var (
	// GlobalVariable is EFI_GLOBAL_VARIABLE (SecureBoot, PK, KEK).
	GlobalVariable = mustGUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
	// ImageSecurityDatabase is EFI_IMAGE_SECURITY_DATABASE_GUID (db, dbx).
	ImageSecurityDatabase = mustGUID("d719b2cb-3d3a-4596-a3bc-dad00e67656f")
	// CertX509 is EFI_CERT_X509_GUID, the signature type of a certificate
	// entry.
	CertX509 = mustGUID("a5c059a1-94e4-4aa7-87b5-ab155c2bf072")
)

// VariableData is the UEFI_VARIABLE_DATA a measured variable event hashes:
// the variable's GUID, the lengths, its name in UTF-16LE without the NUL,
// and its data.
func VariableData(vendor GUID, name string, data []byte) []byte {
	u := utf16.Encode([]rune(name))
	b := make([]byte, 0, 32+2*len(u)+len(data))
	b = append(b, vendor[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(u)))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(data)))
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return append(b, data...)
}

// SignatureData is one entry of an EFI_SIGNATURE_LIST of type X.509: the
// owner's GUID followed by the DER certificate (EFI_SIGNATURE_DATA). It is
// what the firmware measures into PCR 7 as the authority of an image it let
// run.
func SignatureData(owner GUID, certDER []byte) []byte {
	return append(append([]byte{}, owner[:]...), certDER...)
}

// SignatureList is an EFI_SIGNATURE_LIST with one X.509 certificate, as
// cert-to-efi-sig-list writes it and the variable store keeps it.
func SignatureList(owner GUID, certDER []byte) []byte {
	entry := SignatureData(owner, certDER)
	b := append([]byte{}, CertX509[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(28+len(entry))) // SignatureListSize
	b = binary.LittleEndian.AppendUint32(b, 0)                     // SignatureHeaderSize
	b = binary.LittleEndian.AppendUint32(b, uint32(len(entry)))    // SignatureSize
	return append(b, entry...)
}

// FirstX509 returns the owner and certificate of the first entry of an
// EFI_SIGNATURE_LIST of type X.509.
func FirstX509(esl []byte) (owner GUID, certDER []byte, err error) {
	if len(esl) < 28+16 {
		return owner, nil, errors.New("signature list: too short")
	}
	var t GUID
	copy(t[:], esl[:16])
	if t != CertX509 {
		return owner, nil, errors.New("signature list: not of type EFI_CERT_X509_GUID")
	}
	listSize := binary.LittleEndian.Uint32(esl[16:])
	headerSize := binary.LittleEndian.Uint32(esl[20:])
	sigSize := binary.LittleEndian.Uint32(esl[24:])
	if headerSize != 0 || sigSize < 17 || uint64(listSize) > uint64(len(esl)) || uint64(28)+uint64(sigSize) > uint64(listSize) {
		return owner, nil, errors.New("signature list: sizes do not fit")
	}
	copy(owner[:], esl[28:44])
	return owner, esl[44 : 28+sigSize], nil
}

// Measured is what the board's firmware measures while it boots an image
// under Secure Boot.
type Measured struct {
	// Image is the Authenticode digest of the image it starts.
	Image [sha256.Size]byte
	// Kernel is the Authenticode digest of the signed kernel inside it
	// (.linux), which systemd-stub starts with LoadImage: U-Boot verifies
	// and measures it too. Zero for an image without one.
	Kernel [sha256.Size]byte
	// PK, KEK, DB and DBX are the data of the enrolled variables (EFI
	// signature lists; nil for a variable that is not set).
	PK, KEK, DB, DBX []byte
}

// Event is one measurement: the PCR, the event type's name and the digest.
type Event struct {
	PCR    int
	Type   string
	Digest [sha256.Size]byte
}

// Separator is the digest of EV_SEPARATOR's four zero bytes.
var Separator = sha256.Sum256([]byte{0, 0, 0, 0})

// callingBootOption is the EV_EFI_ACTION text measured into PCR 4 when
// the image starts.
const callingBootOption = "Calling EFI Application from Boot Option"

// Events lists the PCR 4 and PCR 7 measurements of the board's firmware
// (U-Boot 2023.01's EFI loader, lib/efi_loader/efi_tcg2.c, booting the
// image QEMU hands over through fw_cfg with bootefi), in the order it makes
// them:
//
//   - when the EFI subsystem starts, the Secure Boot policy (PCR 7,
//     EV_EFI_VARIABLE_DRIVER_CONFIG): SecureBoot, PK, KEK, db, dbx (dbx
//     measured empty when it is not set), DeployedMode and AuditMode (0);
//   - when it loads the image: its Authenticode digest (PCR 4,
//     EV_EFI_BOOT_SERVICES_APPLICATION);
//   - when it starts it: "Calling EFI Application from Boot Option"
//     (PCR 4, EV_EFI_ACTION) and the separators of PCR 0 to 7;
//   - when systemd-stub loads the kernel: its Authenticode digest (PCR 4,
//     EV_EFI_BOOT_SERVICES_APPLICATION).
//
// Unlike edk2, U-Boot 2023.01 does not measure the db entry that verified
// the image (EV_EFI_VARIABLE_AUTHORITY): PCR 7 says which keys the board
// trusts, not which of them signed. TestMeasuredBootMatchesManifest checks
// the order against the board's TPM and event log.
func (m Measured) Events() []Event {
	v := func(vendor GUID, name string, data []byte) [sha256.Size]byte {
		return sha256.Sum256(VariableData(vendor, name, data))
	}
	secureBoot := []byte{1}
	ev := []Event{
		{7, "EV_EFI_VARIABLE_DRIVER_CONFIG", v(GlobalVariable, "SecureBoot", secureBoot)},
		{7, "EV_EFI_VARIABLE_DRIVER_CONFIG", v(GlobalVariable, "PK", m.PK)},
		{7, "EV_EFI_VARIABLE_DRIVER_CONFIG", v(GlobalVariable, "KEK", m.KEK)},
		{7, "EV_EFI_VARIABLE_DRIVER_CONFIG", v(ImageSecurityDatabase, "db", m.DB)},
		{7, "EV_EFI_VARIABLE_DRIVER_CONFIG", v(ImageSecurityDatabase, "dbx", m.DBX)},
		// User Mode: not deployed, not auditing. (U-Boot's table of these
		// names PCR 1; the board's TPM trace shows them in PCR 7.)
		{7, "EV_EFI_VARIABLE_DRIVER_CONFIG", v(GlobalVariable, "DeployedMode", []byte{0})},
		{7, "EV_EFI_VARIABLE_DRIVER_CONFIG", v(GlobalVariable, "AuditMode", []byte{0})},
		{4, "EV_EFI_BOOT_SERVICES_APPLICATION", m.Image},
		{4, "EV_EFI_ACTION", sha256.Sum256([]byte(callingBootOption))},
		{4, "EV_SEPARATOR", Separator},
		{7, "EV_SEPARATOR", Separator},
	}
	if m.Kernel != ([sha256.Size]byte{}) {
		ev = append(ev, Event{4, "EV_EFI_BOOT_SERVICES_APPLICATION", m.Kernel})
	}
	return ev
}

// ExpectedPCRs replays Events from all-zero PCRs and returns PCR 4 and 7.
func (m Measured) ExpectedPCRs() map[int][sha256.Size]byte {
	pcrs := map[int][sha256.Size]byte{4: {}, 7: {}}
	for _, e := range m.Events() {
		p := pcrs[e.PCR]
		pcrs[e.PCR] = sha256.Sum256(append(p[:], e.Digest[:]...))
	}
	return pcrs
}
