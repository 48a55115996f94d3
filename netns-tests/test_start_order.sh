#!/usr/bin/env bash
# test_start_order: either gateway may start first, and a gateway stopped cleanly (SIGTERM) and
# started again brings the tunnel back by itself. gw1 starts alone and keeps trying for longer
# than one SCTP connect attempt (~4 s); then gw2 starts and the tunnel must work within 5 s.
# Then the other way round: gw2 stays, gw1 is stopped with SIGTERM, waits 3 s, starts again.
#
#   client ---------- gw1 ============== WAN ============== gw2 ---------- server
#   10.1.0.2/24   10.1.0.1/24   192.0.2.1 <-- UDP 9899 --> 192.0.2.2   10.2.0.1/24   10.2.0.2/24
#   fd01::2/64    fd01::1/64     [sctptund]   SCTP/UDP     [sctptund]   fd02::1/64    fd02::2/64
#                 starts first, alone for 6 s       starts late
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

topo_up
write_configs
start_gw 1
log "gw1 alone for 6 s (its connect attempts to gw2 time out meanwhile)"
sleep 6
grep -q "association .* up" "$TMPD/gw1.log" && fail "gw1 reports an association while gw2 is not running"
start_gw 2
t0=${GW_START_MS[2]}
wait_tunnel 5
log "late start: tunnel up $(($(now_ms) - t0)) ms after gw2 was launched"

stop_gw 1
sleep 3
start_gw 1
t0=${GW_START_MS[1]}
wait_tunnel 5
log "clean restart: tunnel up $(($(now_ms) - t0)) ms after gw1 was launched again"
grep -q "lost\|down" "$TMPD/gw2.log" || fail "gw2 did not log losing the association when gw1 stopped"
log "PASS: either side may start first; a cleanly restarted gateway reconnects by itself"
