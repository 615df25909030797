// Package uefi makes the firmware image of a board that boots through UEFI
// with Secure Boot (qemu-virt-secure): one signed EFI program that holds the
// kernel, the initramfs and the kernel command line, so that one signature
// and one measurement cover all of it.
//
//   - BuildUKI joins systemd's EFI stub (linuxaa64.efi.stub), the kernel, the
//     initramfs, the command line and an os-release text into a unified
//     kernel image with objcopy.
//   - Sign signs it with the image-signing key (sbsign); Verify checks a
//     signature against a certificate (sbverify).
//   - Authenticode computes the PE image digest: what the firmware checks
//     against db and dbx and measures into PCR 4.
//   - ExpectedPCRs computes, from first principles, the PCR 4 and PCR 7
//     values (SHA-256 bank) that the board's firmware leaves after booting a
//     given image with a given set of enrolled keys.
//   - UBootSeed makes the board's variable store with PK, KEK and db, which
//     Firmware (scripts/build-u-boot.sh) compiles into the board's U-Boot:
//     the manufacturing step (see docs/secure-boot.md).
package uefi
