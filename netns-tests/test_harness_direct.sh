#!/usr/bin/env bash
# test_harness_direct: proves the harness itself (namespaces, addressing, forwarding, nc, xfer)
# without the daemon: the gateways route the LAN prefixes straight over the WAN veth.
#
#   client ---------- gw1 ================ WAN ================ gw2 ---------- server
#   10.1.0.2/24   10.1.0.1/24   192.0.2.1 <--veth--> 192.0.2.2   10.2.0.1/24   10.2.0.2/24
#   fd01::2/64    fd01::1/64    fe80::1              fe80::2     fd02::1/64    fd02::2/64
#                 10.2.0.0/16 via 192.0.2.2          10.1.0.0/16 via 192.0.2.1
#                 fd02::/64 via fe80::2              fd01::/64 via fe80::1
#                 (no tun0, no sctptund)
ROUTING=direct
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmds nc nft
need_tool xfer

topo_up
nft_watch 1
wait_tunnel 10

log "ping both ways, IPv4 and IPv6"
in_ns client ping -c 3 -i 0.2 -W 2 -q 10.2.0.2 >/dev/null || fail "ping client -> server (IPv4) failed"
in_ns server ping -c 3 -i 0.2 -W 2 -q 10.1.0.2 >/dev/null || fail "ping server -> client (IPv4) failed"
in_ns client ping -6 -c 3 -i 0.2 -W 2 -q fd02::2 >/dev/null || fail "ping client -> server (IPv6) failed"
in_ns server ping -6 -c 3 -i 0.2 -W 2 -q fd01::2 >/dev/null || fail "ping server -> client (IPv6) failed"

log "10 MB of random bytes with nc, both directions, SHA-256 checked"
dd if=/dev/urandom of="$TMPD/payload" bs=1M count=10 status=none
nc_transfer client server 10.2.0.2 5001 "$TMPD/payload"
nc_transfer server client fd01::2 5002 "$TMPD/payload"

log "xfer: 8 concurrent connections, 1 MB each way, byte-exact"
bg_ns server "$TMPD/xfer-server.log" "$TOOLS_DIR/xfer" server --port 5201 --count 8 --timeout 60
srv=$BG_PID
wait_listen server 5201
in_ns client "$TOOLS_DIR/xfer" client --host fd02::2 --port 5201 --conns 8 --bytes 1048576 --timeout 30 ||
  fail "xfer client reported failures"
wait_pid "$srv" 30 || fail "xfer server reported failures (status $?)"

fwd=$(nft_count 1 wan_fwd)
((fwd > 0)) || fail "nft saw no packets forwarded out of gw1's wan0: traffic did not take the direct path"
log "gw1 forwarded $fwd packets straight out of wan0 (expected in direct mode)"
log "PASS: harness works without the daemon"
