#!/usr/bin/env bash
# test_ping: ICMP echo both ways over IPv4 and IPv6 through the tunnel, and proof that the packets
# really took the tunnel (kernel tun0 counters, the daemon's own counters, nftables on the WAN).
#
#   client ---------- gw1 ============== WAN ============== gw2 ---------- server
#   10.1.0.2/24   10.1.0.1/24   192.0.2.1 <-- UDP 9899 --> 192.0.2.2   10.2.0.1/24   10.2.0.2/24
#   fd01::2/64    fd01::1/64     [sctptund]   SCTP/UDP     [sctptund]   fd02::1/64    fd02::2/64
#                 tun0: 10.2.0.0/16, fd02::/64      tun0: 10.1.0.0/16, fd01::/64
#                 nft: wan_udp (must grow), wan_fwd (must stay 0: nothing bypasses the tunnel)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmds nft

COUNT=5
topo_up
write_configs
start_gw 1
start_gw 2
wait_tunnel 10
nft_watch 1

tx0=$(tun_stat 1 tx_packets)
rx0=$(tun_stat 1 rx_packets)
udp0=$(nft_count 1 wan_udp)

log "ping client <-> server, $COUNT echoes each way, IPv4 and IPv6"
in_ns client ping -c $COUNT -i 0.2 -W 2 -q 10.2.0.2 || fail "ping client -> server (IPv4) through the tunnel failed"
in_ns server ping -c $COUNT -i 0.2 -W 2 -q 10.1.0.2 || fail "ping server -> client (IPv4) through the tunnel failed"
in_ns client ping -6 -c $COUNT -i 0.2 -W 2 -q fd02::2 || fail "ping client -> server (IPv6) through the tunnel failed"
in_ns server ping -6 -c $COUNT -i 0.2 -W 2 -q fd01::2 || fail "ping server -> client (IPv6) through the tunnel failed"

# 4 pings x COUNT echoes: gw1 routes COUNT requests (client's) + COUNT replies (client's answers
# to the server) per family into tun0, and gets as many back out of it.
want=$((4 * COUNT))
tx=$(($(tun_stat 1 tx_packets) - tx0))
rx=$(($(tun_stat 1 rx_packets) - rx0))
udp=$(($(nft_count 1 wan_udp) - udp0))
fwd=$(nft_count 1 wan_fwd)
log "gw1 tun0: $tx packets into the daemon, $rx out of it; $udp UDP datagrams to port $PORT left wan0; $fwd packets forwarded to the WAN unencapsulated"
((tx >= want)) || fail "gw1 tun0 carried only $tx packets towards the daemon (expected >= $want)"
((rx >= want)) || fail "gw1 tun0 got only $rx packets from the daemon (expected >= $want)"
((udp > 0)) || fail "no UDP datagrams to port $PORT left gw1's wan0 during the pings"
((fwd == 0)) || fail "$fwd packets left gw1's wan0 without encapsulation"

for n in 1 2; do
  c=$(gw_counter "$n" tunneled_packets) || fail "could not read a tunnel counter from 'sctptund show --json' in gw$n (adjust gw_counter/the key if the JSON differs)"
  ((c > 0)) || fail "gw$n: sctptund reports tunneled_packets=$c after the pings"
  log "gw$n: sctptund reports tunneled_packets=$c"
done

log "sctptund show (gw1):"
gw_show 1 || fail "'sctptund show' failed in gw1"
log "PASS: IPv4 and IPv6 echo both ways through the tunnel"
