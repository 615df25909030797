#!/usr/bin/env bash
# Builds the arm64 kernel Image for a board from Debian's linux-source-6.1
# package with the aarch64-linux-gnu cross compiler: allnoconfig + the board's
# kernel.fragment (everything built in, no modules), then checks that every
# option the fragment sets really ended up in .config. The board's
# kernel-patches/*.patch, if any, are applied to the source first (in name
# order, with patch -p1); each one says in its header why it exists.
#
# Usage: scripts/build-kernel.sh [--cached-only] [board]
#   board          board/<board>/kernel.fragment is used (default qemu-virt)
#   --cached-only  print the cached Image path, or exit 3 if it is not built
#
# The Image is cached outside the clone:
#   ${ZM_CACHE:-/var/cache/zmonitor}/kernel/<key>/Image
# where <key> is the sha256 of the linux-source package version, the cross
# compiler version, the fragment, the patches and this script. A cached Image
# is reused.
#
# stdout: the Image path, as the last (only) line. Progress goes to stderr.
# Environment: ZM_CACHE (cache root), KERNEL_JOBS (default: nproc),
# KERNEL_SOURCE (default /usr/src/linux-source-6.1.tar.xz).
set -euo pipefail

cached_only=0
board=qemu-virt
while [ $# -gt 0 ]; do
  case "$1" in
    --cached-only) cached_only=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
    -*) echo "build-kernel: unknown option $1" >&2; exit 2 ;;
    *) board="$1" ;;
  esac
  shift
done
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
script="$repo/scripts/build-kernel.sh"
fragment="$repo/board/$board/kernel.fragment"
patches=()
for p in "$repo/board/$board/kernel-patches/"*.patch; do
  [ -f "$p" ] && patches+=("$p")
done
cache_root="${ZM_CACHE:-/var/cache/zmonitor}/kernel"
source_tar="${KERNEL_SOURCE:-/usr/src/linux-source-6.1.tar.xz}"
source_pkg="linux-source-6.1"
cross="aarch64-linux-gnu-"
jobs="${KERNEL_JOBS:-$(nproc)}"

log() { printf 'build-kernel: %s\n' "$*" >&2; }
die() { printf 'build-kernel: error: %s\n' "$*" >&2; exit 1; }

# Everything that makes the build reproducible: two builds with the same key
# give a byte-identical Image.
export ARCH=arm64
export CROSS_COMPILE="$cross"
export KBUILD_BUILD_TIMESTAMP="1970-01-01 00:00:00 UTC"
export KBUILD_BUILD_USER="zmonitor"
export KBUILD_BUILD_HOST="zmonitor-build"
export KBUILD_BUILD_VERSION="1"
export LC_ALL=C
export TZ=UTC

# --- Inputs present?
[ -f "$fragment" ] || die "no kernel fragment for board '$board': $fragment"
command -v "${cross}gcc" >/dev/null ||
  die "${cross}gcc not found: run scripts/install-deps.sh"
[ -f "$source_tar" ] ||
  die "$source_tar not found (package $source_pkg): run scripts/install-deps.sh"
for tool in make bc flex bison xz tar sha256sum flock patch; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/install-deps.sh"
done

# --- Cache key.
src_version="$(dpkg-query -W -f='${Version}' "$source_pkg" 2>/dev/null || true)"
[ -n "$src_version" ] || die "cannot read the version of package $source_pkg: run scripts/install-deps.sh"
gcc_version="$("${cross}gcc" --version | head -n1)"
key="$(
  {
    printf 'source %s %s\n' "$source_pkg" "$src_version"
    printf 'compiler %s\n' "$gcc_version"
    printf 'fragment\n'; cat "$fragment"
    for p in "${patches[@]}"; do printf 'patch %s\n' "$(basename "$p")"; cat "$p"; done
    printf 'script\n'; cat "$script"
  } | sha256sum | cut -d' ' -f1
)"
dest="$cache_root/$key"
image="$dest/Image"

if [ -f "$image" ]; then
  log "cached: $image"
  echo "$image"
  exit 0
fi
if [ "$cached_only" -eq 1 ]; then
  log "not built yet: $image (run scripts/build-kernel.sh $board)"
  exit 3
fi

mkdir -p "$cache_root" || die "cannot create $cache_root (set ZM_CACHE to a writable directory)"

# One build per key at a time; a second caller waits, then finds the cache.
exec 9>"$cache_root/.$key.lock"
if ! flock -n 9; then
  log "another build of $key is running; waiting for it"
  flock 9
fi
if [ -f "$image" ]; then
  log "cached: $image"
  echo "$image"
  exit 0
fi

start=$SECONDS
elapsed() { local s=$((SECONDS - start)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

work="$(mktemp -d "$cache_root/.build-$key.XXXXXX")"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

log "board $board, $source_pkg $src_version, $gcc_version"
log "key $key"
log "unpacking $source_tar"
tar -xJf "$source_tar" -C "$work"
src="$work/linux-source-6.1"
[ -d "$src" ] || die "unexpected layout of $source_tar: no linux-source-6.1/ directory"
cd "$src"

buildlog="$work/build.log"
for p in "${patches[@]}"; do
  log "applying board/$board/kernel-patches/$(basename "$p")"
  if ! patch -p1 --forward --no-backup-if-mismatch <"$p" >>"$buildlog" 2>&1; then
    tail -n 20 "$buildlog" >&2
    die "patch $(basename "$p") does not apply to $source_pkg $src_version"
  fi
done
# run_make TARGET...: make with the cross compiler, output to the build log.
run_make() {
  if ! make -s ARCH=arm64 CROSS_COMPILE="$cross" "$@" >>"$buildlog" 2>&1; then
    tail -n 40 "$buildlog" >&2
    die "make $* failed (log above)"
  fi
}

log "configuring: allnoconfig + board/$board/kernel.fragment"
run_make allnoconfig
if ! scripts/kconfig/merge_config.sh -m .config "$fragment" >>"$buildlog" 2>&1; then
  tail -n 40 "$buildlog" >&2
  die "merge_config.sh failed"
fi
run_make olddefconfig

# --- Check the fragment against the resulting .config.
missing=()
while IFS= read -r line; do
  if [[ "$line" =~ ^(CONFIG_[A-Za-z0-9_]+)=y$ ]]; then
    opt="${BASH_REMATCH[1]}"
    grep -qx "$opt=y" .config || missing+=("$opt=y (got: $(grep -E "^(# )?$opt[= ]" .config || echo absent))")
  elif [[ "$line" =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
    opt="${BASH_REMATCH[1]}"
    if grep -qE "^$opt=" .config; then
      missing+=("$opt unset (got: $(grep -E "^$opt=" .config))")
    fi
  fi
done <"$fragment"
if [ ${#missing[@]} -gt 0 ]; then
  log "these options of board/$board/kernel.fragment did not survive olddefconfig"
  log "(a dependency is missing or the symbol does not exist in this kernel):"
  for m in "${missing[@]}"; do printf '  %s\n' "$m" >&2; done
  die "${#missing[@]} option(s) missing"
fi
log "config checked: all options of the fragment are in .config"

# --- Build, with a progress line every 250 compiled files.
log "compiling Image with -j$jobs (takes minutes; progress every 250 files)"
# progress: reads make output, prints a line every 250 compiled files and
# every warning or error; everything goes to the build log too.
progress() {
  local n=0 line
  while IFS= read -r line; do
    printf '%s\n' "$line" >>"$buildlog"
    case "$line" in
      "  CC "* | "  AS "* | "  LD "* | "  AR "*)
        n=$((n + 1))
        if [ $((n % 250)) -eq 0 ]; then log "$n files compiled, $(elapsed) elapsed"; fi
        ;;
      *warning:* | *error:* | *"Error "*) log "$line" ;;
    esac
  done
  log "$n files compiled, $(elapsed) elapsed"
}
set +e
make ARCH=arm64 CROSS_COMPILE="$cross" -j"$jobs" Image 2>&1 | progress
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  tail -n 40 "$buildlog" >&2
  die "make Image failed after $(elapsed)"
fi

built="arch/arm64/boot/Image"
[ -f "$built" ] || die "make succeeded but $built is missing"

# --- Install atomically: fill a staging directory, then rename it.
stage="$work/out"
mkdir -p "$stage"
cp "$built" "$stage/Image"
cp .config "$stage/config"
cp System.map "$stage/System.map"
{
  echo "board=$board"
  echo "source_package=$source_pkg"
  echo "source_version=$src_version"
  echo "compiler=$gcc_version"
  echo "kernel_release=$(make -s ARCH=arm64 CROSS_COMPILE="$cross" kernelrelease)"
  echo "fragment_sha256=$(sha256sum "$fragment" | cut -d' ' -f1)"
  for p in "${patches[@]}"; do echo "patch_$(basename "$p" .patch)_sha256=$(sha256sum "$p" | cut -d' ' -f1)"; done
  echo "image_sha256=$(sha256sum "$stage/Image" | cut -d' ' -f1)"
  echo "build_seconds=$((SECONDS - start))"
} >"$stage/build-info"
mv -T "$stage" "$dest" 2>/dev/null || {
  # Someone else installed the same key meanwhile (no lock shared): keep theirs.
  [ -f "$image" ] || die "cannot move the Image into $dest"
}

log "done in $(elapsed): $image ($(stat -c %s "$image") bytes)"
echo "$image"
