# shellcheck shell=bash
# lib_measure.sh: what the benchmarks share for measuring: iperf3 runs in the client namespace,
# the server, medians and ratios. Source it after netns-tests/lib.sh; do not run it.
#
#   start_iperf_server / restart_iperf_server   iperf3 -s in server, port 5201
#   in_client OUT TIMEOUT CMD...                  CMD in client, bounded, stdout to OUT
#   run_iperf TRIES TIMEOUT ARGS...               iperf3 client to the server, JSON in $IPERF_OUT
#   iperf_mbps                                    goodput of the last run, Mbit/s
#   wait_path                                     client pings server (bounded)
#   median_of KEY_PREFIX N                        median of SAMPLE[KEY_PREFIX|1..N] (not NA), or NA
#   ratio A B                                     A/B with 2 decimals, or "-"

IPERF_SRV=""
IPERF_OUT="$TMPD/iperf3-client.json"

start_iperf_server() {
  bg_ns server "$TMPD/iperf3-server.log" iperf3 -s -p 5201
  IPERF_SRV=$BG_PID
  wait_listen server 5201
}

restart_iperf_server() {
  [[ -n $IPERF_SRV ]] && stop_pid "$IPERF_SRV"
  start_iperf_server
}

# in_client OUT TIMEOUT CMD...: run CMD in the client namespace (bounded by TIMEOUT seconds) with
# stdout to OUT, as a background job that is waited for: bash runs the INT trap as soon as Ctrl-C
# arrives during `wait`, whereas for a foreground child that catches SIGINT itself (iperf3 and
# ping do, and then exit normally) it would assume the child handled it and carry on.
in_client() {
  local out=$1 tmo=$2 pid rc=0; shift 2
  ip netns exec "$(ns client)" timeout "$tmo" "$@" >"$out" 2>>"$TMPD/client-stderr.log" &
  pid=$!
  _PIDS+=("$pid")  # stopped by lib.sh's cleanup trap if we are interrupted
  wait "$pid" || rc=$?
  _forget_pid "$pid"
  return "$rc"
}

# run_iperf TRIES TIMEOUT ARGS...: iperf3 client in `client` to the server; JSON in $IPERF_OUT.
run_iperf() {
  local tries=$1 tmo=$2 t err; shift 2
  for ((t = 1; t <= tries; t++)); do
    if in_client "$IPERF_OUT" "$tmo" iperf3 -c 10.2.0.2 -p 5201 -J --connect-timeout 3000 "$@" &&
      jq -e '.end.sum_received.bytes > 0' "$IPERF_OUT" >/dev/null 2>&1; then
      if [[ ${KEEP_TMP:-} == 1 ]]; then  # every run's JSON (per-second intervals) with the logs
        IPERF_RUNS=$((${IPERF_RUNS:-0} + 1))
        cp "$IPERF_OUT" "$IPERF_OUT.$IPERF_RUNS"
        log "iperf3 $* -> $IPERF_OUT.$IPERF_RUNS"
      fi
      return 0
    fi
    err=$(jq -r '.error // empty' "$IPERF_OUT" 2>/dev/null | head -c 200 || true)
    log "warning: iperf3 $* failed (try $t of $tries)${err:+: $err}"
    restart_iperf_server
  done
  return 1
}

iperf_mbps() { jq -r '.end.sum_received.bits_per_second / 1e6' "$IPERF_OUT"; }

wait_path() {  # bounded: at most 20 one-second pings
  local i
  for ((i = 0; i < 20; i++)); do
    in_ns client ping -n -c 1 -W 1 -q 10.2.0.2 >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

median_of() {  # median_of KEY_PREFIX ROUNDS -> median of the rounds' values that are not NA, or NA
  local key=$1 n=$2 i v vals=()
  for ((i = 1; i <= n; i++)); do
    v=${SAMPLE["$key|$i"]:-NA}
    [[ $v == NA ]] || vals+=("$v")
  done
  ((${#vals[@]})) || { echo NA; return 0; }
  printf '%s\n' "${vals[@]}" | sort -g |
    awk '{a[NR] = $1} END {printf "%.6g\n", (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'
}

ratio() {  # ratio A B -> A/B with 2 decimals, or "-"
  if [[ $1 == NA || $2 == NA ]]; then echo "-"; return 0; fi
  awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "-"; else printf "%.2f\n", a / b}'
}

