#!/usr/bin/env bash
# Builds the firmware: cmd/zmonitor as a static, stripped linux/arm64 binary,
# with the build tag zmfirmware, which leaves host mode (`zmonitor run`) and
# the in-memory key store out of /init (cmd/zmonitor/deps_test.go checks the
# build with this tag). The Makefile (make firmware), the end-to-end harness
# and the size test all build it here, so the board always runs what ships.
#
# Usage: scripts/build-firmware.sh OUT [VERSION [BUILDTIME]]
#   VERSION   stamped into internal/base/version (default: git describe)
#   BUILDTIME RFC 3339, the wall-clock floor (default: the last commit's time)
#
# Inlining policy (docs/image.md, "Binary size"). The firmware must stay
# under 10,000,000 bytes. Inlining copies a function's body into every caller,
# which is where a Go binary's size grows fastest, and it buys speed only in
# code that runs often. So the compiler inlines only in the hot code, each
# entry below backed by a benchmark:
#   - the standard library, except the packages listed as cold (they run a few
#     times per boot or per pairing: TLS handshake state machines, x509, fmt,
#     flag parsing, error helpers, the RSA and ECDSA wrappers whose arithmetic
#     lives in crypto/internal/fips140/{nistec,bigmod}, which stay inlined);
#   - rendering and QR encoding (freetype, gg, x/image, go-qrcode, our screen,
#     qr and display drivers): press -> QR on screen;
#   - the audit log (its hash chain is verified at boot).
# Everything else (our provisioning logic, bbolt, periph, dhcp, go-tpm) is
# built without inlining. Measured: -0.59 MB of 8.45 MB; render, QR encode,
# payload Verify/Seal, audit Verify and a TLS 1.3 mutual handshake within
# the noise of the default build (make bench).
# A package reached only through a cold one cannot be inlined from anywhere,
# so tiny helpers that hot code calls (encoding/binary, reflect, encoding/json)
# must stay out of the cold list.
set -euo pipefail
out=${1:?usage: scripts/build-firmware.sh OUT [VERSION [BUILDTIME]]}
cd "$(dirname "$0")/.."
version=${2:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
buildtime=${3:-$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)}
pkg=github.com/zmonitor/firmware
tags=zmfirmware

cold_std=(fmt errors context time os/... syscall log/... net/...
  crypto/tls crypto/x509 crypto/ecdsa crypto/rsa crypto/internal/fips140/rsa
  crypto/ecdh crypto/hpke math/big encoding/asn1 encoding/pem)
hot_other=(github.com/golang/freetype/... github.com/fogleman/gg golang.org/x/image/...
  github.com/skip2/go-qrcode/... "$pkg/internal/fw/screen" "$pkg/internal/fw/qr"
  "$pkg/drivers/..." "$pkg/internal/fw/audit")

# For each package the last matching -gcflags pattern wins.
gcflags=(-gcflags=all=-l -gcflags=std=)
for p in "${cold_std[@]}"; do gcflags+=("-gcflags=$p=-l"); done
for p in "${hot_other[@]}"; do gcflags+=("-gcflags=$p="); done

CGO_ENABLED=0 GOOS=linux GOARCH=arm64 "${GO:-go}" build -trimpath -tags "$tags" "${gcflags[@]}" \
  -ldflags "-s -w -X $pkg/internal/base/version.Version=$version -X $pkg/internal/base/version.BuildTime=$buildtime" \
  -o "$out" ./cmd/zmonitor
