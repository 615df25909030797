#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given time each.
# Usage: scripts/fuzz.sh 3s
set -euo pipefail
t=${1:-3s}
cd "$(dirname "$0")/.."
n=0
while IFS= read -r line; do
  file=${line%%:*}
  name=$(sed -E 's/^.*func (Fuzz[A-Za-z0-9_]+).*/\1/' <<<"$line")
  pkg=./$(dirname "$file")
  echo "fuzz $pkg $name for $t"
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" -fuzzminimizetime 1s "$pkg" >/tmp/fuzz.$$.log 2>&1 || { cat /tmp/fuzz.$$.log; exit 1; }
  n=$((n+1))
done < <(git ls-files '*_test.go' | xargs grep -HE '^func Fuzz[A-Za-z0-9_]+\(' | sort)
rm -f /tmp/fuzz.$$.log
echo "fuzz: $n targets ran for $t each without a crash"
