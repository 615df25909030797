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
)

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

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
