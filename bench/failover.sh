#!/usr/bin/env bash
# Failover gap benchmark: runs netns-tests/test_failover.sh ROUNDS times (two WAN paths, a paced
# transfer, the primary cut by nftables and, separately, by link down, then restored) and
# reports the median and worst longest-delivery-gap per way of cutting.
#   sudo bash bench/failover.sh [ROUNDS]        (default 5; about 30 s per round)
# Env: SCTPTUND, TOOLS_DIR as for the netns tests; FAILOVER_MS / PROBE_MS to try other settings.
set -euo pipefail
rounds=${1:-5}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
declare -A gaps=()
for ((r = 1; r <= rounds; r++)); do
  if ! bash "$here/../netns-tests/test_failover.sh" >"$out" 2>&1; then
    echo "round $r failed:" >&2
    tail -20 "$out" >&2
    exit 1
  fi
  while read -r phase gap; do
    gaps[$phase]+="$gap "
    echo "round $r: $phase cut, longest delivery gap $gap ms"
  done < <(sed -n 's/.*\] \([a-z]*\): longest delivery gap \([0-9]*\) ms.*/\1 \2/p' "$out" | sort -u)
done
printf '\n%-10s %8s %8s   (%d rounds, failover_ms=%s)\n' "cut" "median" "worst" "$rounds" "${FAILOVER_MS:-100, the test default}"
for phase in "${!gaps[@]}"; do
  read -r -a v <<<"${gaps[$phase]}"
  sorted=$(printf '%s\n' "${v[@]}" | sort -n)
  median=$(awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}' <<<"$sorted")
  worst=$(tail -1 <<<"$sorted")
  printf '%-10s %6s ms %6s ms\n' "$phase" "$median" "$worst"
done
