#!/usr/bin/env bash
# Makes a board's Secure Boot keys and the signed variable updates that
# enroll them (docs/secure-boot.md): the platform key (PK), the key exchange
# key (KEK) and the image-signing key whose certificate goes into the
# signature database (db). RSA 2048 with SHA-256, the key type every UEFI
# implementation verifies.
#
# Usage: scripts/uefi-keys.sh DIR [NAME]
#   DIR   created if missing; existing keys in it are kept (the .esl and
#         .auth files are made again from them)
#   NAME  goes into the certificates' common names (default "Z Monitor dev")
#
# DIR then holds, for each of PK, KEK and db:
#   X.key      private key (PEM; for a real device it lives in an HSM and
#              this script's openssl calls become the HSM's)
#   X.crt      self-signed certificate (PEM), X.der (DER)
#   X.esl      EFI_SIGNATURE_LIST with the certificate (cert-to-efi-sig-list)
#   X.auth     the signed update that enrolls it (sign-efi-sig-list): PK and
#              KEK signed by PK, db signed by KEK
# and owner.guid, the signature owner GUID written into every list.
#
# The .auth files carry a fixed time stamp (UEFI_TIMESTAMP, default
# 2026-01-01 00:00:00), so the same keys always give the same files and the
# same enrolled variable store; a later update must carry a later time.
set -euo pipefail

dir="${1:?usage: scripts/uefi-keys.sh DIR [NAME]}"
name="${2:-Z Monitor dev}"
timestamp="${UEFI_TIMESTAMP:-2026-01-01 00:00:00}"

die() { printf 'uefi-keys: error: %s\n' "$*" >&2; exit 1; }
for tool in openssl cert-to-efi-sig-list sign-efi-sig-list; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/install-deps.sh (efitools, openssl)"
done
mkdir -p "$dir"
cd "$dir"
umask 077

if [ ! -f owner.guid ]; then
  # A random owner GUID, kept with the keys.
  python3 -c 'import uuid; print(uuid.uuid4())' >owner.guid
fi
guid="$(cat owner.guid)"

for k in PK KEK db; do
  if [ ! -f "$k.key" ]; then
    openssl req -new -x509 -newkey rsa:2048 -sha256 -nodes -days 7300 \
      -subj "/CN=$name $k/" -keyout "$k.key" -out "$k.crt" 2>/dev/null ||
      die "openssl could not make the $k key"
  fi
  openssl x509 -in "$k.crt" -outform DER -out "$k.der"
  cert-to-efi-sig-list -g "$guid" "$k.crt" "$k.esl" >/dev/null
done
# PK signs itself (Setup Mode takes any, User Mode needs the PK) and KEK;
# KEK signs db.
sign-efi-sig-list -t "$timestamp" -g "$guid" -k PK.key -c PK.crt PK PK.esl PK.auth >/dev/null
sign-efi-sig-list -t "$timestamp" -g "$guid" -k PK.key -c PK.crt KEK KEK.esl KEK.auth >/dev/null
sign-efi-sig-list -t "$timestamp" -g "$guid" -k KEK.key -c KEK.crt db db.esl db.auth >/dev/null
chmod 0644 ./*.crt ./*.der ./*.esl ./*.auth owner.guid
echo "uefi-keys: PK, KEK and db in $dir (owner $guid)" >&2
