#!/usr/bin/env bash
# test_policy: tunnel, bypass and drop per destination, IPv4 and IPv6, [[route]] entries the
# daemon installs, and a reload that turns one destination from tunnel into bypass while a long
# transfer to a tunneled destination keeps running byte-exact.
#
#                                  inet: 198.51.100.7, 2001:db8:7::7 (bypass destinations)
#                                    | eth0 203.0.113.2/24, 2001:db8:1::2/64
#                                    | up0  203.0.113.1/24, 2001:db8:1::1/64 (gw1's default routes)
#   client ---------- gw1 ============== WAN ============== gw2 ---------- server
#   10.1.0.2/24   10.1.0.1/24   192.0.2.1 <-- UDP 9899 --> 192.0.2.2   10.2.0.1/24   10.2.0.2/24
#   fd01::2/64    fd01::1/64     [sctptund]   SCTP/UDP     [sctptund]   fd02::1/64    fd02::2/64
#
# gw1's tun0 receives (routes by the daemon's [[route]] entries): 10.2.0.0/16 + fd02::/64 tunnel,
# 198.51.100.0/24 + 2001:db8:7::/64 bypass (out through up0 as if tun0 were not there),
# 10.3.0.0/16 + fd03::/64 drop (ICMP admin-prohibited back to the client, nothing leaves gw1).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmds nc dd tc

policy_gw1() {  # policy_gw1 ACTION-FOR-198.51.100.0/24
  local peer_line=""
  [[ $1 == tunnel ]] && peer_line='peer = "site-b"'
  GW_EXTRA[1]=$(cat <<TOML
[[route]]
prefix = "198.51.100.0/24"
[[route]]
prefix = "2001:db8:7::/64"
[[route]]
prefix = "10.3.0.0/16"
[[route]]
prefix = "fd03::/64"

[[policy]]
prefix = "198.51.100.0/24"
action = "$1"
$peer_line
[[policy]]
prefix = "2001:db8:7::/64"
action = "bypass"
[[policy]]
prefix = "10.3.0.0/16"
action = "drop"
[[policy]]
prefix = "fd03::/64"
action = "drop"
TOML
)
}

topo_up
inet_up
policy_gw1 bypass
write_configs
start_gw 1
start_gw 2
wait_tunnel 10
tun_routes=$(in_ns gw1 ip route show dev tun0; in_ns gw1 ip -6 route show dev tun0)
for r in 198.51.100.0/24 10.3.0.0/16 2001:db8:7::/64 fd03::/64; do
  grep -q "^$r" <<<"$tun_routes" || fail "gw1: the daemon did not install [[route]] $r dev tun0"
done
nft_watch 1
in_ns gw1 nft -f - <<'NFT'
table inet stpolicy {
  counter up_bypass {}
  counter up_bypass6 {}
  chain out {
    type filter hook postrouting priority 0; policy accept;
    oifname "up0" ip saddr 10.1.0.2 ip daddr 198.51.100.7 counter name "up_bypass"
    oifname "up0" ip6 saddr fd01::2 ip6 daddr 2001:db8:7::7 counter name "up_bypass6"
  }
}
NFT
up_count() { in_ns gw1 nft list counter inet stpolicy "$1" | grep -oE 'packets [0-9]+' | awk '{print $2}'; }

counter() { gw_counter 1 "$1"; }

log "tunnel: client -> server (10.2.0.2, fd02::2)"
t0=$(counter tunneled_packets)
in_ns client ping -c 3 -i 0.2 -W 2 -q 10.2.0.2 >/dev/null || fail "tunneled IPv4 ping failed"
in_ns client ping -6 -c 3 -i 0.2 -W 2 -q fd02::2 >/dev/null || fail "tunneled IPv6 ping failed"
(($(counter tunneled_packets) >= t0 + 6)) || fail "tunnel counters did not move for tunneled pings"

log "bypass: client -> internet host (198.51.100.7, 2001:db8:7::7) through gw1's uplink"
t0=$(counter tunneled_packets); b0=$(counter bypassed_packets)
in_ns client ping -c 3 -i 0.2 -W 2 -q 198.51.100.7 >/dev/null || fail "bypassed IPv4 ping failed"
in_ns client ping -6 -c 3 -i 0.2 -W 2 -q 2001:db8:7::7 >/dev/null || fail "bypassed IPv6 ping failed"
(($(counter bypassed_packets) >= b0 + 6)) || fail "bypass counter did not move"
(($(counter tunneled_packets) == t0)) || fail "tunnel counters moved for bypassed traffic"
(($(up_count up_bypass) >= 3 && $(up_count up_bypass6) >= 3)) ||
  fail "bypassed packets did not leave through the uplink up0 with the client's source address"
dd if=/dev/urandom of="$TMPD/bypass5" bs=1M count=5 status=none
bg_ns inet "$TMPD/nc-inet.log" sh -c "exec nc -l 198.51.100.7 6001 > '$TMPD/bypass5.out' </dev/null"
inet_nc=$BG_PID
wait_listen inet 6001
in_ns client timeout 60 nc -N 198.51.100.7 6001 <"$TMPD/bypass5" || fail "TCP through bypass failed"
wait_pid "$inet_nc" 20 || true
cmp -s "$TMPD/bypass5" "$TMPD/bypass5.out" || fail "TCP through bypass not byte-exact"
log "bypass: 5 MB TCP to the internet host byte-exact (replies reached the client)"

log "drop: client -> 10.3.0.5 and fd03::5 get admin-prohibited at once; nothing leaves gw1"
fwd0=$(nft_count 1 wan_fwd); t0=$(counter tunneled_packets)
out=$(in_ns client ping -c 1 -W 2 10.3.0.5 2>&1 || true)
grep -qi "filtered\|prohibited" <<<"$out" || fail "no admin-prohibited for 10.3.0.5: $out"
out6=$(in_ns client ping -6 -c 1 -W 2 fd03::5 2>&1 || true)
grep -qi "prohibited\|filtered" <<<"$out6" || fail "no admin-prohibited for fd03::5: $out6"
(($(counter policy_drop) >= 2)) || fail "policy_drop counter did not move"
# Nothing forwarded to the WAN and nothing into the tunnel (SCTP heartbeats may still cross).
(($(nft_count 1 wan_fwd) == fwd0 && $(counter tunneled_packets) == t0)) || fail "dropped traffic left gw1 on the WAN"
((${#out} > 0)) && log "  $(grep -i 'filtered\|prohibited' <<<"$out" | head -1)"

log "reload: 198.51.100.0/24 bypass -> tunnel; then, during a long transfer to 10.2.0.2, back to bypass"
policy_gw1 tunnel
write_config 1
in_ns gw1 "$SCTPTUND" reload -c "$(_gw_cfg 1)" || fail "reload to tunnel refused"
t0=$(counter tunneled_packets)
in_ns client ping -c 2 -i 0.2 -W 1 -q 198.51.100.7 >/dev/null 2>&1 || true  # gw2 cannot route it: lost there
(($(counter tunneled_packets) >= t0 + 2)) || fail "after reload, 198.51.100.7 is not tunneled"
json0=$(gw_show 1 --json)
assoc0=$(grep -o '"id":[0-9]*' <<<"$json0" | head -1)

in_ns gw1 tc qdisc add dev wan0 root tbf rate 40mbit burst 64kb latency 200ms
dd if=/dev/urandom of="$TMPD/long" bs=1M count=25 status=none
bg_ns server "$TMPD/nc-long.log" sh -c "exec nc -l 10.2.0.2 6002 > '$TMPD/long.out' </dev/null"
long_srv=$BG_PID
wait_listen server 6002
bg_ns client "$TMPD/nc-long-client.log" sh -c "exec timeout 120 nc -N 10.2.0.2 6002 < '$TMPD/long'"
long_cli=$BG_PID
sleep 1
kill -0 "$long_cli" 2>/dev/null || fail "the long transfer ended before the reload: not long enough"
policy_gw1 bypass
write_config 1
reply=$(in_ns gw1 "$SCTPTUND" reload -c "$(_gw_cfg 1)") || fail "reload to bypass refused"
log "  $reply"
b0=$(counter bypassed_packets)
in_ns client ping -c 2 -i 0.2 -W 2 -q 198.51.100.7 >/dev/null || fail "after reload, 198.51.100.7 is not reachable by bypass"
(($(counter bypassed_packets) >= b0 + 2)) || fail "after reload, bypass counter did not move"

log "an invalid config is refused and the old one stays in force"
printf '[[policy]]\nprefix = "10.9.0.0/16"\naction = "teleport"\n' >>"$(_gw_cfg 1)"
if err=$(in_ns gw1 "$SCTPTUND" reload -s "$TMPD/gw1.sock" 2>&1); then fail "an invalid config was accepted: $err"; fi
grep -q "gw1.toml:[0-9]*: \[policy\] action" <<<"$err" || fail "the refusal does not name file, line and key: $err"
log "  refused: $err"
in_ns client ping -c 1 -W 2 -q 198.51.100.7 >/dev/null || fail "after a refused reload, bypass no longer works"
write_config 1  # the file valid again (show -c reads it to find the socket)

kill -0 "$long_cli" 2>/dev/null || log "  (the long transfer finished during the reloads)"
wait_pid "$long_cli" 90 || fail "the long transfer failed"
wait_pid "$long_srv" 20 || true
cmp -s "$TMPD/long" "$TMPD/long.out" || fail "the long transfer is not byte-exact across the reloads"
json1=$(gw_show 1 --json) || fail "sctptund show failed in gw1 after the reloads"
assoc1=$(grep -o '"id":[0-9]*' <<<"$json1" | head -1)
[[ $assoc0 == "$assoc1" ]] || fail "the association changed across reloads ($assoc0 -> $assoc1)"
grep -q "lost" "$TMPD/gw1.log" && fail "gw1 lost an association during the reloads"
log "PASS: tunnel, bypass and drop per destination (IPv4+IPv6), routes, reload without dropping flows"
