#!/usr/bin/env bash
# Refreshes the front-end files vendored from the npm registry: fetches each
# package with `npm pack` (npm checks the tarball against the registry's
# integrity), copies the few files the web app or the tests use, and writes
# each set's vendor.json (package, version, licence, npm integrity, and per
# file its source in the tarball and its sha256).
#
# Run by hand when a version changes (edit the versions below), then
# `go test ./internal/central/web/... ./internal/testkit/browser/...`:
# the tests check every file against vendor.json and that the pages still
# reference the versions vendored. Nothing is fetched at build or run time.
# Needs npm and node (Debian: apt-get install npm).
set -euo pipefail
cd "$(dirname "$0")/.."

ZXING_WASM=3.1.8       # the QR decoder the web app ships (docs/web-app.md)
AXE_CORE=4.14.1        # accessibility checks in the browser tests
# The other decoders of the comparison (docs/web-app.md), test data only.
BARCODE_DETECTOR=3.2.5 # must depend on exactly zxing-wasm $ZXING_WASM
QR_SCANNER=1.4.2
JSQR=1.4.0

command -v npm >/dev/null || { echo "vendor-web: npm not found (apt-get install npm)" >&2; exit 1; }
command -v node >/dev/null || { echo "vendor-web: node not found (apt-get install nodejs)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

manifest="" root="" entries="" pkg_json=""

# begin_set ROOT: empties ROOT and starts its vendor.json.
begin_set() {
  root=$1
  manifest="$root/vendor.json"
  rm -rf "$root"
  mkdir -p "$root"
  entries=""
}

# pkg NAME VERSION [license:]SRC=DST...: fetches NAME@VERSION and copies
# package/SRC to ROOT/NAME@VERSION/DST. A "license:" prefix marks a licence
# file. A SRC starting with / is a file of this machine (a licence text
# Debian ships) and is recorded as such.
pkg() {
  local name=$1 version=$2
  shift 2
  local dir="$name@$version" tgzdir="$work/$name@$version"
  mkdir -p "$tgzdir"
  local meta
  meta=$(cd "$tgzdir" && npm pack --silent --json "$name@$version")
  local tgz integrity license
  tgz=$(node -e 'const m=JSON.parse(process.argv[1])[0]; process.stdout.write(m.filename)' "$meta")
  integrity=$(node -e 'const m=JSON.parse(process.argv[1])[0]; process.stdout.write(m.integrity)' "$meta")
  tar -xzf "$tgzdir/$tgz" -C "$tgzdir"
  license=$(node -e 'process.stdout.write(String(require(process.argv[1]).license))' "$tgzdir/package/package.json")
  pkg_json="$tgzdir/package/package.json"
  for v in "$license" "$integrity"; do # written into JSON as they are
    [[ $v =~ ^[A-Za-z0-9.+/=()\ -]+$ ]] || { echo "vendor-web: $name@$version: unexpected value '$v'" >&2; exit 1; }
  done
  local files="" spec src dst is_license from
  for spec in "$@"; do
    is_license=false
    if [[ $spec == license:* ]]; then is_license=true; spec=${spec#license:}; fi
    src=${spec%%=*} dst=${spec#*=}
    if [[ $src == /* ]]; then
      from="debian:$src"
    else
      from="package/$src"
      src="$tgzdir/package/$src"
    fi
    [ -f "$src" ] || { echo "vendor-web: $name@$version has no $from" >&2; exit 1; }
    mkdir -p "$(dirname "$root/$dir/$dst")"
    cp "$src" "$root/$dir/$dst"
    chmod 0644 "$root/$dir/$dst"
    local sum
    sum=$(sha256sum "$root/$dir/$dst" | cut -d' ' -f1)
    files+="${files:+,}
        {\"path\": \"$dst\", \"from\": \"$from\", \"sha256\": \"$sum\", \"license\": $is_license}"
  done
  entries+="${entries:+,}
    {
      \"name\": \"$name\",
      \"version\": \"$version\",
      \"license\": \"$license\",
      \"integrity\": \"$integrity\",
      \"dir\": \"$dir\",
      \"files\": [$files
      ]
    }"
  echo "vendor-web: $root/$dir ($license)"
}

# dependency NAME: the version the last package pins for NAME.
dependency() {
  node -e 'const d=require(process.argv[1]).dependencies||{}; process.stdout.write(d[process.argv[2]]||"")' "$pkg_json" "$1"
}

end_set() {
  printf '{\n  "generator": "scripts/vendor-web.sh",\n  "packages": [%s\n  ]\n}\n' "$entries" >"$manifest"
  echo "vendor-web: wrote $manifest"
}

# What the Central Station serves (internal/central/web, embedded).
begin_set internal/central/web/static/vendor
pkg zxing-wasm "$ZXING_WASM" \
  license:LICENSE=LICENSE \
  license:/usr/share/common-licenses/Apache-2.0=LICENSE.zxing-cpp \
  dist/es/reader/index.js=es/reader/index.js \
  dist/es/share.js=es/share.js \
  dist/reader/zxing_reader.wasm=reader/zxing_reader.wasm
end_set

# What the browser tests inject (internal/testkit/browser, embedded there).
begin_set internal/testkit/browser/vendor
pkg axe-core "$AXE_CORE" \
  license:LICENSE=LICENSE \
  license:LICENSE-3RD-PARTY.txt=LICENSE-3RD-PARTY.txt \
  axe.min.js=axe.min.js
end_set

# The decoders the comparison measured against zxing-wasm
# (BenchmarkQRDecoders in internal/central/web): test data only.
begin_set internal/central/web/testdata/decoders
pkg barcode-detector "$BARCODE_DETECTOR" \
  license:LICENSE=LICENSE \
  dist/es/ponyfill.js=es/ponyfill.js \
  dist/es/zxing-exported.js=es/zxing-exported.js
dep=$(dependency zxing-wasm)
[ "$dep" = "$ZXING_WASM" ] || { echo "vendor-web: barcode-detector@$BARCODE_DETECTOR wants zxing-wasm $dep, the app ships $ZXING_WASM: pick matching versions" >&2; exit 1; }
pkg qr-scanner "$QR_SCANNER" \
  license:LICENSE=LICENSE \
  qr-scanner.min.js=qr-scanner.min.js \
  qr-scanner-worker.min.js=qr-scanner-worker.min.js
pkg jsqr "$JSQR" \
  license:LICENSE=LICENSE \
  dist/jsQR.js=jsQR.js
end_set
