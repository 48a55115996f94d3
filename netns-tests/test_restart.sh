#!/usr/bin/env bash
# test_restart: kill -9 one gateway's daemon, restart it (routes re-added), and require a new TCP
# connection through the tunnel within RECOVERY_LIMIT (5 s) of the restart; first gw2, then gw1.
# The recovery time is measured from the moment the new daemon is launched.
#
#   client ---------- gw1 ============== WAN ============== gw2 ---------- server
#   10.1.0.2/24   10.1.0.1/24   192.0.2.1 <-- UDP 9899 --> 192.0.2.2   10.2.0.1/24   10.2.0.2/24
#   fd01::2/64    fd01::1/64     [sctptund]   SCTP/UDP     [sctptund]   fd02::1/64    fd02::2/64
#                                kill -9 / restart  (round 2)  (round 1)  kill -9 / restart
#   xfer client (1 conn, 64 KB each way, retried) ============================> xfer server
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_tool xfer
XFER=$TOOLS_DIR/xfer
RECOVERY_LIMIT=${RECOVERY_LIMIT:-5}

topo_up
write_configs
start_gw 1
start_gw 2
wait_tunnel 10

# One server for the whole test: failed attempts during recovery must not use up its count.
bg_ns server "$TMPD/xfer-server.log" "$XFER" server --port 5201 --count 0 --timeout 300
wait_listen server 5201
in_ns client "$XFER" client --host 10.2.0.2 --port 5201 --conns 1 --bytes 65536 --timeout 10 ||
  fail "baseline connection through the tunnel failed"

declare -A RECOVERY=()
for victim in 2 1; do
  log "round: kill -9 the daemon in gw$victim"
  kill9_gw "$victim"
  if in_ns client "$XFER" client --host 10.2.0.2 --port 5201 --conns 1 --bytes 1024 --timeout 2 >/dev/null 2>&1; then
    fail "a connection succeeded while gw$victim's daemon was dead: traffic bypasses the tunnel"
  fi
  start_gw "$victim"
  t0=${GW_START_MS[$victim]}
  ok=0
  for ((attempt = 1; attempt <= 20; attempt++)); do
    (($(now_ms) - t0 < RECOVERY_LIMIT * 1000)) || break
    if in_ns client "$XFER" client --host 10.2.0.2 --port 5201 --conns 1 --bytes 65536 --timeout 2 \
      >>"$TMPD/xfer-client.log" 2>&1; then
      ok=1
      break
    fi
    sleep 0.1
  done
  ms=$(($(now_ms) - t0))
  ((ok)) || fail "no connection through the tunnel within ${RECOVERY_LIMIT} s of restarting gw$victim ($((attempt - 1)) attempts)"
  ((ms <= RECOVERY_LIMIT * 1000)) || fail "restart of gw$victim: first connection took ${ms} ms (limit ${RECOVERY_LIMIT} s)"
  RECOVERY[$victim]=$ms
  log "gw$victim restarted: new connection byte-exact ${ms} ms after the restart (attempt $attempt)"
  in_ns client "$XFER" client --host 10.2.0.2 --port 5201 --conns 4 --bytes 1048576 --timeout 30 ||
    fail "after restarting gw$victim: 4x1 MB transfer failed"
done

log "recovery times after kill -9 + restart: gw2 ${RECOVERY[2]} ms, gw1 ${RECOVERY[1]} ms (limit ${RECOVERY_LIMIT} s)"
log "PASS: the tunnel recovers from a daemon restart on either side"
