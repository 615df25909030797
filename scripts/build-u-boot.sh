#!/usr/bin/env bash
# Builds the boot firmware of a board that boots under Secure Boot
# (qemu-virt-secure): U-Boot from Debian's u-boot source package with
# board/<board>/u-boot-patches/*.patch applied on top of Debian's,
# qemu_arm64_defconfig plus board/<board>/u-boot.fragment (UEFI Secure Boot
# with the variable store preseeded, TPM 2.0 measurements, no interactive
# console) and board/<board>/u-boot.env (the whole, fixed environment). The
# fragment's options are checked against the resulting .config.
#
# Usage: scripts/build-u-boot.sh [--cached-only] --seed FILE [board]
#   --seed FILE    the preseeded UEFI variable store: PK, KEK and db
#                  (zm-image uefi-seed --keys DIR --out FILE). The keys are
#                  compiled into the firmware, as on a board whose firmware
#                  sits in write-protected flash.
#   board          default qemu-virt-secure
#   --cached-only  print the cached directory, or exit 3 if it is not built
#
# The firmware is cached outside the clone:
#   ${ZM_CACHE:-/var/cache/zmonitor}/u-boot/<key>/{u-boot.bin,config,build-info}
# u-boot.bin is what QEMU's -bios loads. <key> is the sha256 of the source
# package version, the cross compiler version, the defconfig, the patches,
# the fragment, the environment, the seed and this script.
#
# The source comes from Debian's archive (apt-get source u-boot=VERSION;
# needs a deb-src line, scripts/install-deps.sh adds one). UBOOT_VERSION picks
# the version (default: the newest that apt knows).
#
# stdout: the cache directory, as the last (only) line. Progress on stderr.
# Environment: ZM_CACHE, UBOOT_JOBS (default: nproc), UBOOT_VERSION.
set -euo pipefail

cached_only=0
board=qemu-virt-secure
seed=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cached-only) cached_only=1 ;;
    --seed)
      [ $# -ge 2 ] || { echo "build-u-boot: --seed needs a file" >&2; exit 2; }
      seed="$2"
      shift
      ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
    -*) echo "build-u-boot: unknown option $1" >&2; exit 2 ;;
    *) board="$1" ;;
  esac
  shift
done
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
script="$repo/scripts/build-u-boot.sh"
fragment="$repo/board/$board/u-boot.fragment"
envfile="$repo/board/$board/u-boot.env"
patchdir="$repo/board/$board/u-boot-patches"
defconfig=qemu_arm64_defconfig
cache_root="${ZM_CACHE:-/var/cache/zmonitor}/u-boot"
cross="aarch64-linux-gnu-"
jobs="${UBOOT_JOBS:-$(nproc)}"

log() { printf 'build-u-boot: %s\n' "$*" >&2; }
die() { printf 'build-u-boot: error: %s\n' "$*" >&2; exit 1; }

export LC_ALL=C
export TZ=UTC

[ -f "$fragment" ] || die "no U-Boot fragment for board '$board': $fragment"
[ -f "$envfile" ] || die "no U-Boot environment for board '$board': $envfile"
[ -n "$seed" ] || die "--seed FILE is required (zm-image uefi-seed --keys DIR --out FILE)"
[ -f "$seed" ] || die "seed $seed not found"
seed="$(realpath "$seed")"
command -v "${cross}gcc" >/dev/null || die "${cross}gcc not found: run scripts/install-deps.sh"
for tool in make bison flex bc patch dpkg-source dpkg-parsechangelog apt-get sha256sum flock; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/install-deps.sh"
done

# --- Cache key.
version="${UBOOT_VERSION:-$(apt-cache showsrc u-boot 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n1)}"
[ -n "$version" ] || die "apt knows no u-boot source package: a deb-src line is needed (run scripts/install-deps.sh)"
gcc_version="$("${cross}gcc" --version | head -n1)"
key="$(
  {
    printf 'source u-boot %s\n' "$version"
    printf 'compiler %s\n' "$gcc_version"
    printf 'defconfig %s\n' "$defconfig"
    for p in "$patchdir"/*.patch; do
      [ -f "$p" ] || continue
      printf 'patch %s\n' "${p##*/}"; cat "$p"
    done
    printf 'fragment\n'; cat "$fragment"
    printf 'env\n'; cat "$envfile"
    printf 'seed\n'; sha256sum <"$seed"
    printf 'script\n'; cat "$script"
  } | sha256sum | cut -d' ' -f1
)"
dest="$cache_root/$key"

if [ -f "$dest/u-boot.bin" ]; then
  log "cached: $dest"
  echo "$dest"
  exit 0
fi
if [ "$cached_only" -eq 1 ]; then
  log "not built yet: $dest (run scripts/build-u-boot.sh --seed $seed $board)"
  exit 3
fi

mkdir -p "$cache_root" || die "cannot create $cache_root (set ZM_CACHE to a writable directory)"
exec 9>"$cache_root/.$key.lock"
if ! flock -n 9; then
  log "another build of $key is running; waiting for it"
  flock 9
fi
if [ -f "$dest/u-boot.bin" ]; then
  log "cached: $dest"
  echo "$dest"
  exit 0
fi

start=$SECONDS
elapsed() { local s=$((SECONDS - start)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }
work="$(mktemp -d "$cache_root/.build-$key.XXXXXX")"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
buildlog="$work/build.log"
fail() {
  tail -n 40 "$buildlog" >&2
  die "$* (log above; $(elapsed))"
}

log "board $board, u-boot $version, $gcc_version"
log "key $key"
log "fetching the u-boot $version source package"
(cd "$work" && apt-get source -qq --download-only "u-boot=$version") >>"$buildlog" 2>&1 ||
  fail "apt-get source u-boot=$version failed"
# Debian's patches (security fixes among them) are applied by dpkg-source.
(cd "$work" && dpkg-source -x u-boot_*.dsc src) >>"$buildlog" 2>&1 || fail "dpkg-source -x failed"
src="$work/src"
cd "$src"
# Ours, on top of Debian's (each says what and why in its header).
for p in "$patchdir"/*.patch; do
  [ -f "$p" ] || continue
  log "applying ${p#"$repo"/}"
  patch -p1 --forward --batch <"$p" >>"$buildlog" 2>&1 || fail "patch ${p##*/} does not apply"
done
# The build stamps this time into the banner: the source package's date, so
# the same inputs give the same firmware.
SOURCE_DATE_EPOCH="$(dpkg-parsechangelog -STimestamp)"
export SOURCE_DATE_EPOCH
# Kconfig paths are relative to the source tree.
cp "$seed" zmonitor-efivars.seed
cp "$envfile" zmonitor-u-boot.env

build="$work/build"
run_make() {
  make -s O="$build" ARCH=arm CROSS_COMPILE="$cross" "$@" >>"$buildlog" 2>&1
}
log "configuring: $defconfig + ${fragment#"$repo"/}"
run_make "$defconfig" || fail "make $defconfig failed"
scripts/kconfig/merge_config.sh -m -O "$build" "$build/.config" "$fragment" >>"$buildlog" 2>&1 ||
  fail "merge_config.sh failed"
run_make olddefconfig || fail "make olddefconfig failed"

# --- Check the fragment against the resulting .config.
missing=()
while IFS= read -r line; do
  if [[ "$line" =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
    opt="${BASH_REMATCH[1]}"
    grep -qxF "$line" "$build/.config" || missing+=("$line (got: $(grep -E "^(# )?$opt[= ]" "$build/.config" || echo absent))")
  elif [[ "$line" =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
    opt="${BASH_REMATCH[1]}"
    if grep -qE "^$opt=" "$build/.config"; then
      missing+=("$opt unset (got: $(grep -E "^$opt=" "$build/.config"))")
    fi
  fi
done <"$fragment"
if [ ${#missing[@]} -gt 0 ]; then
  log "these options of ${fragment#"$repo"/} did not survive olddefconfig"
  log "(a dependency is missing or the symbol does not exist in this U-Boot):"
  for m in "${missing[@]}"; do printf '  %s\n' "$m" >&2; done
  die "${#missing[@]} option(s) missing"
fi
log "config checked: all options of the fragment are in .config"

log "compiling u-boot.bin with -j$jobs"
run_make -j"$jobs" u-boot.bin || fail "make u-boot.bin failed"
[ -f "$build/u-boot.bin" ] || fail "build succeeded but u-boot.bin is missing"

stage="$work/out"
mkdir -p "$stage"
cp "$build/u-boot.bin" "$stage/u-boot.bin"
cp "$build/.config" "$stage/config"
{
  echo "board=$board"
  echo "source_package=u-boot"
  echo "source_version=$version"
  echo "compiler=$gcc_version"
  echo "defconfig=$defconfig"
  for p in "$patchdir"/*.patch; do
    [ -f "$p" ] && echo "patch=${p##*/} $(sha256sum <"$p" | cut -d' ' -f1)"
  done
  echo "fragment_sha256=$(sha256sum <"$fragment" | cut -d' ' -f1)"
  echo "env_sha256=$(sha256sum <"$envfile" | cut -d' ' -f1)"
  echo "seed_sha256=$(sha256sum <"$seed" | cut -d' ' -f1)"
  echo "u_boot_bin_sha256=$(sha256sum <"$stage/u-boot.bin" | cut -d' ' -f1)"
  echo "build_seconds=$((SECONDS - start))"
} >"$stage/build-info"
mv -T "$stage" "$dest" 2>/dev/null || [ -f "$dest/u-boot.bin" ] || die "cannot move the firmware into $dest"
log "done in $(elapsed): $dest"
echo "$dest"
