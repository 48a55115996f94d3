#!/usr/bin/env bash
# test_transfer: bulk TCP through the tunnel with nc, checked end to end with SHA-256:
# 50 MB client->server and 50 MB server->client over IPv4, then 10 MB each way over IPv6.
#
#   client ---------- gw1 ============== WAN ============== gw2 ---------- server
#   10.1.0.2/24   10.1.0.1/24   192.0.2.1 <-- UDP 9899 --> 192.0.2.2   10.2.0.1/24   10.2.0.2/24
#   fd01::2/64    fd01::1/64     [sctptund]   SCTP/UDP     [sctptund]   fd02::1/64    fd02::2/64
#                 tun0: 10.2.0.0/16, fd02::/64      tun0: 10.1.0.0/16, fd01::/64
#   nc -N  ---------------------------------------------------------------->  nc -l   (and back)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmds nc dd

topo_up
write_configs
start_gw 1
start_gw 2
wait_tunnel 10
nft_watch 1
nft_watch 2

dd if=/dev/urandom of="$TMPD/up50" bs=1M count=50 status=none
dd if=/dev/urandom of="$TMPD/down50" bs=1M count=50 status=none
dd if=/dev/urandom of="$TMPD/v6-10" bs=1M count=10 status=none

log "IPv4: 50 MB client -> server, then 50 MB server -> client"
nc_transfer client server 10.2.0.2 5001 "$TMPD/up50"
nc_transfer server client 10.1.0.2 5002 "$TMPD/down50"
log "IPv6: 10 MB client -> server, then 10 MB server -> client"
nc_transfer client server fd02::2 5003 "$TMPD/v6-10"
nc_transfer server client fd01::2 5004 "$TMPD/v6-10"

for n in 1 2; do
  frags=$(nft_count "$n" wan_frag_in); bytes=$(nft_bytes "$n" wan_udp_in)
  largest=$(gw_counter "$n" largest_datagram_out)
  log "gw$n: $((bytes / 1000000)) MB of SCTP/UDP arrived on wan0, $frags IP fragments; largest datagram sent $largest bytes"
  ((bytes > 60000000)) || fail "gw$n: only $bytes bytes counted on wan0: the counter does not see the tunnel"
  ((frags == 0)) || fail "gw$n: $frags IP fragments arrived: tunnel datagrams exceed the WAN MTU"
  ((largest <= 1472)) || fail "gw$n: a $largest-byte datagram does not fit the 1500-byte WAN MTU with its headers"
done
log "sctptund show (gw1):"
gw_show 1 || fail "'sctptund show' failed in gw1"
log "PASS: all transfers byte-exact"
