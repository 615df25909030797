#!/usr/bin/env bash
# Interop check of the TPM key store against an implementation we did not
# write: Debian's tpm2-tools read the device's persistent public keys from a
# swtpm state directory and compare them with an enrollment record.
#
# usage: scripts/tpm-interop.sh STATE_DIR RECORD_JSON [PORT]
#   STATE_DIR    swtpm --tpmstate directory of a provisioned device (no swtpm
#                may be running on it)
#   RECORD_JSON  the device's enrollment record (internal/proto/enroll JSON)
#   PORT         TCP command port for a temporary swtpm (default 2321; the
#                control channel uses PORT+1), bound to 127.0.0.1
# env: IDENTITY_HANDLE (0x81010001), PAYLOAD_HANDLE (0x81010002)
#
# tpm2-tools' "swtpm" TCTI speaks swtpm's TCP protocol (command port plus
# control port), so this script runs swtpm with a TCP server on a copy of the
# state. Exit 0: both keys match; 1: a mismatch; 2: usage or setup error.
set -euo pipefail

die() { echo "tpm-interop: $*" >&2; exit 2; }
[ $# -ge 2 ] || die "usage: $0 STATE_DIR RECORD_JSON [PORT]"
state=$1 record=$2 port=${3:-2321}
id_handle=${IDENTITY_HANDLE:-0x81010001}
pay_handle=${PAYLOAD_HANDLE:-0x81010002}
for tool in swtpm tpm2_readpublic base64; do
  command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install swtpm tpm2-tools)"
done
[ -d "$state" ] || die "no state directory $state"
[ -r "$record" ] || die "cannot read $record"

work=$(mktemp -d)
swtpm_pid=""
cleanup() {
  if [ -n "$swtpm_pid" ]; then kill "$swtpm_pid" 2>/dev/null || true; wait "$swtpm_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Work on a copy: reading must not change the device's state.
cp -a "$state" "$work/state"
swtpm socket --tpm2 \
  --server "type=tcp,port=$port,bindaddr=127.0.0.1" \
  --ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" \
  --tpmstate "dir=$work/state" --flags not-need-init,startup-clear \
  --log "file=$work/swtpm.log" &
swtpm_pid=$!
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port"

# Wait (bounded) for swtpm to answer.
for _ in $(seq 1 100); do
  if tpm2_readpublic -c "$id_handle" -f der -o "$work/id.der" >/dev/null 2>"$work/err"; then break; fi
  kill -0 "$swtpm_pid" 2>/dev/null || die "swtpm exited: $(cat "$work/swtpm.log" 2>/dev/null)"
  sleep 0.1
done
[ -s "$work/id.der" ] || die "tpm2_readpublic $id_handle failed: $(cat "$work/err")"
tpm2_readpublic -c "$pay_handle" -f der -o "$work/pay.der" >/dev/null 2>"$work/err" ||
  die "tpm2_readpublic $pay_handle failed: $(cat "$work/err")"

field() { tr -d '\n' <"$record" | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p"; }
want_id=$(field identityPublicKey)
want_pay=$(field payloadPublicKey)
[ -n "$want_id" ] && [ -n "$want_pay" ] || die "$record lacks identityPublicKey/payloadPublicKey"
got_id=$(base64 -w0 "$work/id.der")
got_pay=$(base64 -w0 "$work/pay.der")

status=0
if [ "$got_id" = "$want_id" ]; then echo "identity key $id_handle: match"; else
  echo "identity key $id_handle: MISMATCH"; echo "  tpm2-tools: $got_id"; echo "  record:     $want_id"; status=1; fi
if [ "$got_pay" = "$want_pay" ]; then echo "payload key $pay_handle: match"; else
  echo "payload key $pay_handle: MISMATCH"; echo "  tpm2-tools: $got_pay"; echo "  record:     $want_pay"; status=1; fi
exit $status
