#!/usr/bin/env bash
# test_ipv6_underlay: the udp transport over an IPv6-only WAN (issue "real networks", item 3; the
# first step: one path, IPv6 on both ends). The WAN link loses its IPv4 addresses; both gateways
# bind and reach each other over 2001:db8:ffff::/64. Checks: ping v4 and v6 through the tunnel,
# 20 MB each way byte-exact (nc + SHA-256), the tunnel's datagrams on the WAN are UDP over IPv6
# only (nftables on gw2's wan0 ingress: UDP/IPv6 to the port counted, UDP/IPv4 none, no IPv6
# fragment headers), and `sctptund show` names the IPv6 path.
#
#   client ---------- gw1 ================== WAN ================== gw2 ---------- server
#   10.1.0.2/24   10.1.0.1/24  2001:db8:ffff::1 <-- UDP 9899 --> 2001:db8:ffff::2  10.2.0.1/24   10.2.0.2/24
#   fd01::2/64    fd01::1/64   [sctptund]   SCTP/UDP/IPv6   [sctptund]             fd02::1/64    fd02::2/64
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmds nc dd nft

topo_up
_addr gw1 wan0 2001:db8:ffff::1/64
_addr gw2 wan0 2001:db8:ffff::2/64
in_ns gw1 ip addr del 192.0.2.1/24 dev wan0
in_ns gw2 ip addr del 192.0.2.2/24 dev wan0
# Duplicate address detection must finish before the daemons bind (bounded: 5 s).
for ((i = 0; i < 50; i++)); do
  [[ -z $(in_ns gw1 ip -6 addr show dev wan0 tentative) && -z $(in_ns gw2 ip -6 addr show dev wan0 tentative) ]] && break
  sleep 0.1
done
in_ns gw1 ping -6 -c 1 -W 2 -q 2001:db8:ffff::2 >/dev/null || fail "gw1 cannot reach gw2 over the IPv6 WAN"
log "WAN is IPv6 only: gw1 2001:db8:ffff::1 <-> gw2 2001:db8:ffff::2"

write_configs
for n in 1 2; do
  me=$n other=$((3 - n))
  sed -i -e "s/^local = \[\"192.0.2.$me\"\]/local = [\"2001:db8:ffff::$me\"]/" \
    -e "s/^remote = \[\"192.0.2.$other\"\]/remote = [\"2001:db8:ffff::$other\"]/" "$(_gw_cfg "$n")"
  grep -q "^remote = \[\"2001:db8:ffff::$other\"\]" "$(_gw_cfg "$n")" || fail "could not rewrite gw$n's config for IPv6"
  "$SCTPTUND" --check -c "$(_gw_cfg "$n")" >"$TMPD/check$n.log" 2>&1 || fail "gw$n's IPv6 config rejected: $(cat "$TMPD/check$n.log")"
done

# Counted where gw2's wan0 receives them (netdev ingress: before any reassembly). A UDP GSO batch
# that crosses the veth whole counts once, hence the modest threshold below.
in_ns gw2 nft -f - <<EOF
table netdev stv6 {
  counter udp6 {}
  counter udp4 {}
  counter frag6 {}
  chain in {
    type filter hook ingress device "wan0" priority 0; policy accept;
    meta protocol ip6 udp dport $PORT counter name "udp6"
    meta protocol ip udp dport $PORT counter name "udp4"
    meta protocol ip6 exthdr frag exists counter name "frag6"
  }
}
EOF
v6count() { in_ns gw2 nft list counter netdev stv6 "$1" | grep -oE 'packets [0-9]+' | awk '{print $2}'; }
# The fragment counter works: a 3000-byte ping over the 1500-byte WAN arrives in fragments.
in_ns gw1 ping -6 -c 1 -s 3000 -W 2 -q 2001:db8:ffff::2 >/dev/null || fail "a fragmented IPv6 ping gw1 -> gw2 failed"
F6_BASE=$(v6count frag6)
((F6_BASE >= 2)) || fail "the IPv6 fragment counter saw $F6_BASE fragments of a 3000-byte ping"

start_gw 1
start_gw 2
wait_tunnel 15
in_ns client ping -c 3 -i 0.2 -W 2 -q 10.2.0.2 >/dev/null || fail "ping client -> server failed"
in_ns server ping -6 -c 3 -i 0.2 -W 2 -q fd01::2 >/dev/null || fail "ping -6 server -> client failed"

dd if=/dev/urandom of="$TMPD/f20" bs=1M count=20 status=none
nc_transfer client server 10.2.0.2 5001 "$TMPD/f20"
nc_transfer server client 10.1.0.2 5002 "$TMPD/f20"

u6=$(v6count udp6) u4=$(v6count udp4) f6=$(($(v6count frag6) - F6_BASE))
log "gw2's wan0 received $u6 UDP/IPv6 and $u4 UDP/IPv4 datagrams (or GSO batches) for port $PORT, $f6 IPv6 fragments"
((u6 > 100)) || fail "too few UDP/IPv6 datagrams on the WAN ($u6): is the tunnel on IPv6?"
((u4 == 0)) || fail "$u4 UDP/IPv4 datagrams on an IPv6-only WAN"
((f6 == 0)) || fail "$f6 IPv6 fragments on the WAN: tunnel datagrams exceed the path MTU"
path=$(gw_show 1 | grep -m 1 "path:" || true)
log "gw1:$path"
[[ $path == *"[2001:db8:ffff::1]:$PORT -> [2001:db8:ffff::2]:$PORT"*"up"* ]] || fail "show does not name the IPv6 path as up: $path"
log "PASS: the tunnel runs over an IPv6-only WAN: pings and 20 MB each way byte-exact, UDP/IPv6 only, no fragments"
