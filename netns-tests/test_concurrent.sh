#!/usr/bin/env bash
# test_concurrent: 32 concurrent TCP connections through the tunnel, 1 MB each way each, every byte
# verified by xfer (deterministic pseudo-random streams); over IPv4, then over IPv6.
#
#   client ---------- gw1 ============== WAN ============== gw2 ---------- server
#   10.1.0.2/24   10.1.0.1/24   192.0.2.1 <-- UDP 9899 --> 192.0.2.2   10.2.0.1/24   10.2.0.2/24
#   fd01::2/64    fd01::1/64     [sctptund]   SCTP/UDP     [sctptund]   fd02::1/64    fd02::2/64
#                 tun0: 10.2.0.0/16, fd02::/64      tun0: 10.1.0.0/16, fd01::/64
#   xfer client x32 ========================================================> xfer server
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_tool xfer
XFER=$TOOLS_DIR/xfer
CONNS=32
BYTES=1048576

topo_up
write_configs
start_gw 1
start_gw 2
wait_tunnel 10

run_round() {  # run_round LABEL SERVER_ADDR PORT
  log "$1: $CONNS concurrent connections to [$2]:$3, $BYTES bytes each way"
  bg_ns server "$TMPD/xfer-server.log" "$XFER" server --port "$3" --count "$CONNS" --timeout 90
  local srv=$BG_PID
  wait_listen server "$3"
  in_ns client "$XFER" client --host "$2" --port "$3" --conns "$CONNS" --bytes "$BYTES" --timeout 60 ||
    fail "$1: xfer client reported failed connections"
  wait_pid "$srv" 40 || fail "$1: xfer server reported failed connections (status $?)"
}

run_round IPv4 10.2.0.2 5201
run_round IPv6 fd02::2 5202

log "sctptund show (gw1):"
gw_show 1 || fail "'sctptund show' failed in gw1"
log "PASS: $CONNS concurrent connections byte-exact over IPv4 and IPv6"
