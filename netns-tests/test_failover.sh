#!/usr/bin/env bash
# test_failover: multi-path udp transport. Two WAN links between the gateways; each gateway has
# local = [its wan0, its wan1] and remote = [the peer's wan0, wan1]. A paced TCP transfer
# client -> server runs while the primary path (wan0) is cut, (a) by an nftables drop of UDP on
# gw1's wan0 in both directions, (b) by `ip link set wan0 down` in gw1. Each time: traffic moves to
# wan1, the longest gap in data delivered to the receiver is at most MAX_GAP_MS (default 300),
# the transfer completes byte-exact without a reset; then the path is restored and traffic
# returns to wan0 (failback, after the hold time).
#
#   client -- gw1 == wan0 192.0.2.0/24 ==== gw2 -- server
#                 == wan1 198.51.100.0/24 ==
#   gapmeter send (paced)  ------------------------>  gapmeter recv (verifies bytes, measures gaps)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmds nft
need_tool gapmeter

MAX_GAP_MS=${MAX_GAP_MS:-300}
RATE=${RATE:-10000000}     # bytes/s of the paced transfer
BYTES=${BYTES:-100000000}  # 10 s at RATE
PROBE_MS=${PROBE_MS:-50}      # the config default
FAILOVER_MS=${FAILOVER_MS:-100}  # tighter than the default 150: more margin to the 300 ms limit on a busy CI machine

topo_up
wan1_up
multipath_configs "probe_interval_ms=$PROBE_MS" "failover_ms=$FAILOVER_MS"
start_gw 1
start_gw 2
wait_tunnel 10

path_counters_up

cut_nft() { wan0_cut; }
restore_nft() { wan0_restore; }
cut_link() { in_ns gw1 ip link set wan0 down; }
restore_link() { in_ns gw1 ip link set wan0 up; link_wait_up gw1 wan0; link_wait_up gw2 wan0; }

count_log() { grep -c "$2" "$TMPD/gw$1.log" || true; }

WORST=0
RESULTS=()
phase() {
  local name=$1 port=$2 cut=$3 restore=$4 rpid spid t_cut t_restore fo1 fo2 fb1 summary gaps g
  log "---- phase $name: $((BYTES / 1000000)) MB client -> server at $((RATE / 1000000)) MB/s; cut wan0 after 2 s"
  fo1=$(count_log 1 failover); fo2=$(count_log 2 failover); fb1=$(count_log 1 failback)
  bg_ns server "$TMPD/recv-$name.log" "$TOOLS_DIR/gapmeter" recv --port "$port" --bytes "$BYTES" --timeout 60
  rpid=$BG_PID
  wait_listen server "$port"
  bg_ns client "$TMPD/send-$name.log" "$TOOLS_DIR/gapmeter" send --host 10.2.0.2 --port "$port" \
    --bytes "$BYTES" --rate "$RATE" --timeout 60
  spid=$BG_PID
  sleep 1.5
  measure_paths 0.5
  log "before the cut: gw1 sent $D0 bytes on wan0, $D1 on wan1 in 0.5 s"
  ((D0 > RATE / 4)) || fail "$name: the transfer does not use wan0 before the cut ($D0 bytes in 0.5 s)"
  ((D1 < RATE / 40)) || fail "$name: wan1 carries traffic before the cut ($D1 bytes in 0.5 s)"

  t_cut=$(now_ms)
  $cut
  log "cut wan0 ($name)"
  sleep 0.5
  measure_paths 1
  log "during the cut: gw1 sent $D0 bytes on wan0, $D1 on wan1 in 1 s"
  ((D1 > RATE / 2)) || fail "$name: traffic did not move to wan1 ($D1 bytes in 1 s)"
  (($(count_log 1 failover) > fo1)) || fail "$name: gw1 logged no failover"
  (($(count_log 2 failover) > fo2)) || fail "$name: gw2 logged no failover"

  t_restore=$(now_ms)
  $restore
  log "restored wan0 ($name)"
  # Failback comes after the hold time (1 s) once wan0 answers probes again: wait (bounded, 4 s)
  # for a half second in which the traffic is on wan0 alone.
  sleep 1
  local back=0 i
  for ((i = 0; i < 8; i++)); do
    measure_paths 0.5
    if ((D0 > RATE / 4 && D1 < RATE / 40)); then back=1; break; fi
  done
  log "after the restore: gw1 sent $D0 bytes on wan0, $D1 on wan1 in 0.5 s ($((1000 + 500 * (i + 1))) ms after the restore)"
  ((back)) || fail "$name: traffic did not return to wan0 alone within 5 s of the restore"
  (($(count_log 1 failback) > fb1)) || fail "$name: gw1 logged no failback"

  wait_pid "$spid" 60 || fail "$name: sender failed (status $?): $(cat "$TMPD/send-$name.log")"
  wait_pid "$rpid" 60 || fail "$name: receiver failed (status $?): $(tail -3 "$TMPD/recv-$name.log")"
  gap_check "$name" "$TMPD/recv-$name.log" "$t_cut"
  log "$name: restore at +$((t_restore - t_cut)) ms after the cut"
  RESULTS+=("$name: longest delivery gap $GAP ms")
  WORST=$((GAP > WORST ? GAP : WORST))
}

phase nft 5101 cut_nft restore_nft
phase linkdown 5102 cut_link restore_link

log "failover/failback lines of gw1:"
grep -E "failover|failback" "$TMPD/gw1.log" | sed 's/^/  /'
log "sctptund show (gw1):"
gw_show 1 || fail "'sctptund show' failed in gw1"
for r in "${RESULTS[@]}"; do log "$r"; done
log "PASS: failover and failback with a delivery gap of at most $WORST ms (limit $MAX_GAP_MS ms)"
