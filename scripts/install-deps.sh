#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the QEMU board need.
# Idempotent: packages already present are skipped. Needs root (or sudo).
set -euo pipefail

packages=(
  # QEMU board and its TPM
  qemu-system-arm qemu-utils swtpm swtpm-tools tpm2-tools
  # kernel build for the board (image/kernel)
  linux-source-6.1 gcc-aarch64-linux-gnu make bc flex bison libssl-dev libelf-dev
  xz-utils cpio kmod patch
  # data disk
  e2fsprogs
  # tests: serial console over a pty pair, Central Station storage
  socat postgresql
  # the CRL checked by OpenSSL (zm-central certificates revoke, crl)
  openssl
  # cgo TPM simulator (go-tpm-tools) in host tests
  gcc libc6-dev
  # web app tests: headless Chromium driven by chromedp (fake camera, virtual
  # passkey authenticator, axe-core), with a font for its screenshots
  chromium fonts-dejavu-core
  # qemu-virt-secure: signing and Secure Boot keys, the digest check, and
  # the firmware built from Debian's u-boot source (scripts/build-u-boot.sh:
  # dpkg-source, flock)
  sbsigntool efitools osslsigncode dpkg-dev util-linux
  # systemd's arm64 EFI stub for the unified kernel image (multiarch)
  systemd-boot-efi:arm64
)

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo=sudo
fi

# systemd-boot-efi:arm64 needs the arm64 architecture in dpkg, and
# scripts/build-u-boot.sh the u-boot source package: both come from Debian's
# archive, as apt is set up here.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "install-deps: adding the arm64 architecture (systemd-boot-efi:arm64)"
  $sudo dpkg --add-architecture arm64
  need_update=1
fi
# (Output captured first: grep -q would close the pipe under pipefail.)
showsrc="$(apt-cache showsrc u-boot 2>/dev/null || true)"
if ! grep -q '^Version:' <<<"$showsrc"; then
  src=/etc/apt/sources.list.d/zmonitor-deb-src.sources
  echo "install-deps: adding $src (deb-src of the configured Debian suites, for u-boot)"
  # The deb-src twin of every Debian deb822 source that is configured.
  for f in /etc/apt/sources.list.d/*.sources; do
    [ "$f" = "$src" ] && continue
    awk 'BEGIN{RS=""; ORS="\n\n"} /Types:[^\n]*deb/ && /debian/ {sub(/Types:[^\n]*/, "Types: deb-src"); print}' "$f"
  done | $sudo tee "$src" >/dev/null
  need_update=1
fi
if [ "${need_update:-0}" -eq 1 ]; then
  $sudo apt-get update -qq
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [ -n "$sudo" ] && ! command -v sudo >/dev/null; then
  echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
