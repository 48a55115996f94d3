#!/usr/bin/env bash
# test_pmtu: the WAN path MTU is learned, never assumed (issue "real networks", item 4). A router
# between the gateways has a 1400-byte link towards gw2; everything else is 1500 and
# [transport] path_mtu is left at its default (1500). The router answers a too-big DF packet with
# ICMP "fragmentation needed", as Linux does when forwarding.
#
#   client ---- gw1 ========================== rt ========================== gw2 ---- server
#   10.1.0.2    wan0 100.64.0.2/24   in0 100.64.0.1/24   out0 192.0.2.254/24   wan0 192.0.2.2/24
#               mtu 1500  <---------->  mtu 1500           mtu 1400 <-------->  mtu 1400
#               [sctptund]               ICMP frag-needed                      [sctptund]   10.2.0.2
#               knows nothing until      (rate-limited by                      its own link: 1400
#               the ICMP comes back      the kernel)                           from the start
#
#  1. gw2 sizes its packets for 1400 from the start (its route's MTU); gw1 starts at 1500.
#  2. 20 MB TCP client -> server, then 20 MB server -> client, byte-exact (nc + SHA-256). gw1's
#     first big datagrams are dropped by rt, whose ICMP puts PMTU 1400 into gw1's kernel; gw1's
#     next one is refused (EMSGSIZE: the WAN sockets never fragment), which re-checks the path
#     MTU at once: gw1 logs "path MTU 1400 (route/PMTU to 192.0.2.2 ...)", its associations use
#     it (show --json path_mtu 1400, sctp_mtu 1328: 1360 less the 32 bytes kept for FEC, which
#     the gateways agree on by default), and every DF datagram since was <= 1372.
#  3. IP fragments arriving at gw2 (netdev ingress, before reassembly): only the SCTP packets
#     usrsctp had cut for 1500 before the drop (in flight or queued), which SCTP cannot cut
#     again and gw1 therefore sends as fragments: exactly 2 per datagrams_fragmented, and a
#     bounded number. None arrive at gw1 (gw2 never sent a datagram too big for its link).
#  4. The kernel forgets the PMTU (route cache flushed, as when it expires after 10 min): gw1
#     goes back to path_mtu (log), then learns 1400 again once it sends a datagram over 1400
#     and a transfer after that is byte-exact. An association keeps cutting messages for the
#     lowest MTU it has had, so bulk TCP alone may never send one (only SCTP packets bundling
#     several chunks grow past it): bursts of UDP datagrams from client to server, of a sweep of
#     sizes (600..760 bytes), are bundled two to a packet, some of which exceed 1400. Chunks are
#     bundled only when they wait for the window: each burst (512 datagrams, ~360 KB) is more
#     than a new association's first window (100 packets) or the cap's floor (256 KB) let out
#     at once.
#
# BLACKHOLE=1: the same topology, but rt drops its ICMP errors (a black hole). Shows the known
# limit (no PLPMTUD): gw1 -> gw2 bulk traffic stalls (the transfer does not finish in 20 s) while
# server -> client works; with [transport] path_mtu = 1400 on gw1 it works again.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmds nc dd nft ethtool grep
need_tool spray
BLACKHOLE=${BLACKHOLE:-0}
BIG=1400           # the bottleneck's MTU
FIT=$((BIG - 28))  # the largest UDP payload that crosses it unfragmented (IPv4)
FEC_RESERVE=32     # bytes of it the SCTP packets leave for FEC (agreed by default: [[peer]] fec)
MARK=9899          # the daemons' fwmark: their WAN sockets are routed by table 9899

# ---- topology ---------------------------------------------------------------------------------

topo_up
in_ns gw1 ip link del wan0  # the direct WAN veth goes; gw1 -- rt -- gw2 instead
ns_add rt
_sysctl rt net.ipv4.ip_forward=1
ip -n "${PFX}gw1" link add wan0 type veth peer name in0 netns "${PFX}rt"
ip -n "${PFX}rt" link add out0 type veth peer name wan0 netns "${PFX}gw2"
in_ns rt ip link set out0 mtu $BIG
in_ns gw2 ip link set wan0 mtu $BIG
_addr gw1 wan0 100.64.0.2/24
_addr rt in0 100.64.0.1/24
_addr rt out0 192.0.2.254/24
_addr gw2 wan0 192.0.2.2/24 192.0.2.3/24  # .3: the counters' self-check only
for l in gw1:wan0 rt:in0 rt:out0 gw2:wan0; do link_wait_up "${l%%:*}" "${l#*:}"; done
in_ns gw1 ip route add 192.0.2.0/24 via 100.64.0.1
in_ns gw2 ip route add 100.64.0.0/24 via 192.0.2.254
link_mtu() { ip -n "${PFX}$1" -o link show dev "$2" | grep -oE ' mtu [0-9]+' | awk '{print $2}'; }
for l in gw1:wan0:1500 rt:in0:1500 rt:out0:$BIG gw2:wan0:$BIG; do
  IFS=: read -r r d m <<<"$l"
  [[ $(link_mtu "$r" "$d") == "$m" ]] || fail "$d in $r has MTU $(link_mtu "$r" "$d"), not $m"
done
# Every datagram a separate packet on the "wire" (the daemons' UDP GSO batches are cut before
# it), so the router and the counters see each one.
for n in 1 2; do
  in_ns "gw$n" ethtool -K wan0 tx-udp-segmentation off >/dev/null 2>&1 ||
    fail "ethtool -K wan0 tx-udp-segmentation off failed in gw$n"
done
log "WAN: gw1 -- rt (mtu 1500) -- (mtu $BIG) gw2"

write_configs
# gw1 lives on 100.64.0.2 now; [transport] path_mtu stays unset (1500).
sed -i 's/^local = \["192.0.2.1"\]$/local = ["100.64.0.2"]/' "$TMPD/gw1.toml"
sed -i 's/^remote = \["192.0.2.1"\]$/remote = ["100.64.0.2"]/' "$TMPD/gw2.toml"
for n in 1 2; do
  ! grep -q path_mtu "$TMPD/gw$n.toml" || fail "gw$n's config sets path_mtu: this test needs the default"
  "$SCTPTUND" --check -c "$TMPD/gw$n.toml" >"$TMPD/check$n.log" 2>&1 || fail "gw$n's config: $(cat "$TMPD/check$n.log")"
done
grep -q '^local = \["100.64.0.2"\]' "$TMPD/gw1.toml" || fail "could not set gw1's local address"
grep -q '^remote = \["100.64.0.2"\]' "$TMPD/gw2.toml" || fail "could not set gw2's remote address"

# ---- counters ---------------------------------------------------------------------------------

# Both gateways' wan0, before any reassembly (netdev ingress).
for n in 1 2; do
  in_ns "gw$n" nft -f - <<EOF
table netdev stpmtu {
  counter frag4 {}
  counter tunnel {}
  chain in {
    type filter hook ingress device "wan0" priority 0; policy accept;
    meta protocol ip ip frag-off & 0x3fff != 0 counter name "frag4"
    meta protocol ip udp dport $PORT counter name "tunnel"
  }
}
EOF
done
# The router: packets over $BIG bytes arriving from gw1 (each is dropped with DF set, or
# fragmented without), and the "fragmentation needed" errors it sends (before any drop).
in_ns rt nft -f - <<EOF
table inet stpmtu {
  counter too_big_in {}
  counter frag_needed {}
  chain pre { type filter hook prerouting priority 0; policy accept; iifname "in0" ip length > $BIG counter name "too_big_in"; }
  chain out { type filter hook output priority 0; policy accept; icmp type destination-unreachable icmp code frag-needed counter name "frag_needed"; }
}
EOF
cnt() { in_ns "$1" nft list counter "$2" stpmtu "$3" | grep -oE 'packets [0-9]+' | awk '{print $2}'; }
reset_counters() {
  in_ns gw1 nft reset counters table netdev stpmtu >/dev/null
  in_ns gw2 nft reset counters table netdev stpmtu >/dev/null
  in_ns rt nft reset counters table inet stpmtu >/dev/null
}
# cached_mtu ROLE DST: the PMTU the kernel of ROLE has cached for DST (as the daemon's sockets
# are routed), or nothing.
cached_mtu() { in_ns "$1" ip route get "$2" mark $MARK | grep -oE 'cache.* mtu [0-9]+' | grep -oE '[0-9]+$' || true; }

# Self-check: a 2000-byte ping without DF arrives at gw2 in fragments (rt cuts it to $BIG),
# and one of 1500 bytes with DF draws "fragmentation needed" (to 192.0.2.3, so the kernel's
# PMTU entry for the daemons' peer 192.0.2.2 stays unknown).
in_ns gw1 ping -M dont -c 1 -s 2000 -W 2 -q 192.0.2.3 >/dev/null || fail "self-check: a fragmented ping gw1 -> gw2 failed"
in_ns gw1 ping -M "do" -c 1 -s 1472 -W 1 -q 192.0.2.3 >/dev/null 2>&1 || true
f=$(cnt gw2 netdev frag4) t=$(cnt rt inet too_big_in) i=$(cnt rt inet frag_needed)
((f >= 2 && t >= 2 && i >= 1)) ||
  fail "self-check: gw2 counted $f fragments (want >= 2), rt $t packets over $BIG (want >= 2) and $i ICMP frag-needed (want >= 1)"
[[ $(cached_mtu gw1 192.0.2.3) == "$BIG" ]] || fail "self-check: gw1's kernel did not learn PMTU $BIG from rt's ICMP"
[[ -z $(cached_mtu gw1 192.0.2.2) ]] || fail "gw1's kernel knows a PMTU for 192.0.2.2 before the daemons start"
reset_counters
log "counters count (fragments, too-big packets, ICMP); gw1's kernel has no PMTU for 192.0.2.2 yet"
if ((BLACKHOLE)); then  # after the self-check, which needs the ICMP
  in_ns rt nft -f - <<EOF
table inet stbh {
  chain out { type filter hook output priority 10; policy accept; icmp type destination-unreachable drop; }
}
EOF
  log "rt drops its ICMP errors from now on: a black hole for packets over $BIG bytes"
fi

# ---- run --------------------------------------------------------------------------------------

start_gw 1
start_gw 2
wait_tunnel 10

# jnums JSON KEY: every integer value of KEY in JSON (one per association), one per line.
jnums() { grep -oE "\"$2\"[[:space:]]*:[[:space:]]*[0-9]+" <<<"$1" | grep -oE '[0-9]+$' || true; }
# all_eq N KEY WANT: every association of gwN shows KEY = WANT (fails loudly otherwise).
all_eq() {
  local json vals v
  json=$(gw_json "$1")
  vals=$(jnums "$json" "$2")
  [[ -n $vals ]] || fail "gw$1: no \"$2\" in 'sctptund show --json'"
  for v in $vals; do [[ $v == "$3" ]] || fail "gw$1: an association shows $2 = $v, not $3: $(tr '\n' ' ' <<<"$vals")"; done
}
max_of() { local json; json=$(gw_json "$1"); jnums "$json" "$2" | sort -n | tail -n 1; }

grep -qE "peer site-a: path MTU $BIG \(route/PMTU to 100\.64\.0\.2 from 192\.0\.2\.2\), SCTP packets <= $FIT bytes" "$TMPD/gw2.log" ||
  fail "gw2 did not size its packets for its own $BIG-byte link at start"
all_eq 2 path_mtu $BIG
all_eq 2 sctp_mtu $((FIT - 12 - FEC_RESERVE))
all_eq 1 path_mtu 1500
log "at start: gw2 uses path MTU $BIG (its link), gw1 1500 (nothing learned yet)"

dd if=/dev/urandom of="$TMPD/up20" bs=1M count=20 status=none
dd if=/dev/urandom of="$TMPD/down20" bs=1M count=20 status=none

if ((BLACKHOLE)); then
  # The known limit: without the ICMP nothing tells gw1 (or its kernel) the path is smaller.
  bg_ns server "$TMPD/nc-bh.log" sh -c "exec nc -l 10.2.0.2 5001 >/dev/null </dev/null"
  lpid=$BG_PID
  wait_listen server 5001
  t0=$(now_ms) rc=0
  in_ns client timeout 20 nc -N 10.2.0.2 5001 <"$TMPD/up20" || rc=$?
  stop_pid "$lpid"
  ((rc == 124)) || fail "black hole: the transfer client -> server ended with status $rc after $(($(now_ms) - t0)) ms (expected a stall: timeout, 124)"
  log "black hole: 20 MB client -> server stalled (not done after 20 s); rt dropped $(cnt rt inet too_big_in) packets over $BIG, $(cnt rt inet frag_needed) ICMP errors never left"
  lost=$(grep -c "lost (communication lost)" "$TMPD/gw1.log" || true)
  log "black hole: gw1 lost an association $lost times meanwhile; gw1's path MTU: $(max_of 1 path_mtu), its kernel's PMTU: '$(cached_mtu gw1 192.0.2.2)'"
  nc_transfer server client 10.1.0.2 5002 "$TMPD/down20"
  log "black hole: server -> client works (gw2 knows its own link's MTU)"
  stop_gw 1
  sed -i "s/^kind = \"udp\"$/kind = \"udp\"\npath_mtu = $BIG/" "$TMPD/gw1.toml"
  grep -q "^path_mtu = $BIG" "$TMPD/gw1.toml" || fail "could not set gw1's path_mtu"
  "$SCTPTUND" --check -c "$TMPD/gw1.toml" >"$TMPD/check1.log" 2>&1 || fail "gw1's config: $(cat "$TMPD/check1.log")"
  start_gw 1
  wait_tunnel 15
  nc_transfer client server 10.2.0.2 5003 "$TMPD/up20"
  log "PASS (black hole): documented stall reproduced; [transport] path_mtu = $BIG works around it"
  exit 0
fi

log "20 MB client -> server (gw1 learns the path MTU on the way), then 20 MB server -> client"
nc_transfer client server 10.2.0.2 5001 "$TMPD/up20"
nc_transfer server client 10.1.0.2 5002 "$TMPD/down20"

grep -qE "peer site-b: path MTU $BIG \(route/PMTU to 192\.0\.2\.2 from 100\.64\.0\.2\), SCTP packets now <= $FIT bytes" "$TMPD/gw1.log" ||
  fail "gw1 did not log the lowered path MTU"
[[ $(cached_mtu gw1 192.0.2.2) == "$BIG" ]] || fail "gw1's kernel has no PMTU $BIG for 192.0.2.2 (did rt's ICMP arrive?)"
for n in 1 2; do
  all_eq "$n" path_mtu $BIG
  all_eq "$n" sctp_mtu $((FIT - 12 - FEC_RESERVE))
  largest=$(max_of "$n" largest_datagram_at_path_mtu)
  ((largest > 1000 && largest <= FIT)) ||
    fail "gw$n: largest DF datagram since the path MTU was set is $largest bytes (want 1000 < x <= $FIT)"
done
changes1=$(gw_counter 1 path_mtu_changes) changes2=$(gw_counter 2 path_mtu_changes)
((changes1 == 1 && changes2 == 0)) || fail "path MTU changes: gw1 $changes1 (want 1), gw2 $changes2 (want 0)"

frags2=$(cnt gw2 netdev frag4) frags1=$(cnt gw1 netdev frag4)
fragmented=$(gw_counter 1 datagrams_fragmented) too_big=$(gw_counter 1 datagrams_too_big)
lost=$(cnt rt inet too_big_in) icmp=$(cnt rt inet frag_needed) tunnel2=$(cnt gw2 netdev tunnel)
log "gw1: $too_big datagrams refused as too big, $fragmented SCTP packets cut for 1500 sent as IP fragments;" \
  "rt dropped $lost packets over $BIG and sent $icmp ICMP frag-needed; gw2 received $tunnel2 tunnel datagrams" \
  "and $frags2 IP fragments, gw1 $frags1"
((tunnel2 > 15000)) || fail "gw2 counted only $tunnel2 tunnel datagrams: the counter does not see the tunnel"
((frags1 == 0)) || fail "$frags1 IP fragments arrived at gw1: gw2 sent datagrams too big for its own link"
# The only fragments: gw1's SCTP packets cut for 1500 before it learned 1400 (a DATA chunk keeps
# its size when it is resent), each sent as 2 fragments. How many: the chunks in flight or queued
# when the MTU dropped, about a congestion window at the start of the transfer (measured: 4).
((frags2 == 2 * fragmented)) ||
  fail "gw2 received $frags2 IP fragments, but gw1 sent $fragmented datagrams as fragments (2 each): fragments from elsewhere"
((fragmented <= 64)) || fail "gw1 sent $fragmented datagrams as IP fragments after the MTU dropped (want <= 64)"
((lost <= 64)) || fail "rt dropped $lost too-big packets from gw1 before it learned the MTU (want <= 64)"

# ---- the kernel forgets -------------------------------------------------------------------------

reset_counters
in_ns gw1 ip route flush cache  # as when the PMTU entry expires (net.ipv4.route.mtu_expires)
[[ -z $(cached_mtu gw1 192.0.2.2) ]] || fail "gw1's kernel still has a PMTU for 192.0.2.2 after a flush"
for ((i = 0; i < 50; i++)); do
  grep -qE "peer site-b: path MTU 1500 \(\[transport\] path_mtu\), SCTP packets now <= 1472 bytes" "$TMPD/gw1.log" && break
  sleep 0.1
done
grep -qE "peer site-b: path MTU 1500 \(\[transport\] path_mtu\), SCTP packets now <= 1472 bytes" "$TMPD/gw1.log" ||
  fail "gw1 did not go back to path_mtu within 5 s of its kernel forgetting the PMTU"
all_eq 1 path_mtu 1500
log "gw1's kernel forgot the PMTU: gw1 is back at path_mtu 1500; bursts of 600..760-byte UDP datagrams client -> server"
for ((size = 600; size <= 760; size += 8)); do
  in_ns client "$TOOLS_DIR/spray" --to 10.2.0.2 --port 9 --count 512 --timeout 5 \
    --payload "$(printf '%0*d' $((2 * size)) 0)" >>"$TMPD/bursts.log" || fail "spray failed: $(tail -1 "$TMPD/bursts.log")"
  grep -qE "peer site-b: path MTU $BIG .* SCTP packets now <= $FIT bytes" <(sed -n '/path MTU 1500 (\[transport\] path_mtu)/,$p' "$TMPD/gw1.log") && break
done
log "20 MB client -> server again"
nc_transfer client server 10.2.0.2 5003 "$TMPD/up20"
# The transfer may end before gw1 rechecks (a too-big refusal schedules the recheck; rechecks
# keep a minimum gap): wait for it, bounded (5 s).
for ((i = 0; i < 50; i++)); do
  n=$(grep -cE "peer site-b: path MTU $BIG \(route/PMTU to 192\.0\.2\.2 from 100\.64\.0\.2\), SCTP packets now <= $FIT bytes" "$TMPD/gw1.log")
  ((n >= 2)) && break
  sleep 0.1
done
((n == 2)) || fail "gw1 logged the lowered path MTU $n times (want 2: it must learn it again)"
all_eq 1 path_mtu $BIG
frags2=$(cnt gw2 netdev frag4) fragmented2=$(gw_counter 1 datagrams_fragmented)
log "learned again: $((fragmented2 - fragmented)) more SCTP packets sent as IP fragments, gw2 received $frags2 fragments"
((frags2 == 2 * (fragmented2 - fragmented))) || fail "gw2 received $frags2 IP fragments, gw1 sent $((fragmented2 - fragmented)) datagrams as fragments"
((fragmented2 - fragmented <= 64)) || fail "gw1 sent $((fragmented2 - fragmented)) datagrams as IP fragments after the second drop (want <= 64)"

log "sctptund show (gw1):"
gw_show 1 || fail "'sctptund show' failed in gw1"
log "PASS: the path MTU was learned (route at gw2, ICMP at gw1), transfers byte-exact, fragments bounded"
