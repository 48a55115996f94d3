#!/usr/bin/env bash
# test_peers: one gateway, two peers. gw1's policy sends 10.2.0.0/16 to site-b (gw2) and
# 10.4.0.0/16 to site-c (gw3); each peer has its own association, over its own WAN link and
# local address, and traffic to one never touches the other.
#
#   client ---------- gw1 ====== wan0 192.0.2.1 <-> 192.0.2.2 ====== gw2 ---------- server
#   10.1.0.2/24   10.1.0.1/24                                   10.2.0.1/24   10.2.0.2/24
#                   ||
#                   || wan1 198.18.0.1 <-> 198.18.0.3
#                   ||
#                  gw3 ---------- server3
#               10.4.0.1/24   10.4.0.2/24
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_tool xfer
XFER=$TOOLS_DIR/xfer

topo_up
ns_add gw3 server3
_sysctl gw3 net.ipv4.ip_forward=1
ip -n "${PFX}gw1" link add wan1 type veth peer name wan0 netns "${PFX}gw3"
ip -n "${PFX}gw3" link add lan0 type veth peer name eth0 netns "${PFX}server3"
_addr gw1 wan1 198.18.0.1/24
_addr gw3 wan0 198.18.0.3/24
_addr gw3 lan0 10.4.0.1/24
_addr server3 eth0 10.4.0.2/24
in_ns server3 ip route add default via 10.4.0.1
sleep 1  # veth carrier (the shared topology waits the same way)

GW_EXTRA[1]=$(cat <<TOML
[[peer]]
name = "site-c"
remote = ["198.18.0.3"]
key_file = "$(psk_file site-c)"

[[policy]]
prefix = "10.4.0.0/16"
action = "tunnel"
peer = "site-c"
TOML
)
write_configs
# gw1 listens on both WAN addresses.
sed -i 's/^local = \["192.0.2.1"\]/local = ["192.0.2.1", "198.18.0.1"]/' "$(_gw_cfg 1)"
"$SCTPTUND" --check -c "$(_gw_cfg 1)" >/dev/null || fail "gw1's two-peer config is invalid"
cat >"$TMPD/gw3.toml" <<TOML
[tun]
name = "tun0"
mtu = 1400
[transport]
local = ["198.18.0.3"]
[control]
socket = "$TMPD/gw3.sock"
[[peer]]
name = "site-a"
remote = ["198.18.0.1"]
key_file = "$(psk_file site-c)"
[[policy]]
prefix = "10.1.0.0/16"
action = "tunnel"
peer = "site-a"
TOML

start_gw 1
start_gw 2
bg_ns gw3 "$TMPD/gw3.log" "$SCTPTUND" -c "$TMPD/gw3.toml" --log-level "$LOG_LEVEL"
for ((i = 0; i < 100; i++)); do in_ns gw3 ip link show dev tun0 >/dev/null 2>&1 && break; sleep 0.1; done
in_ns gw3 ip route add 10.1.0.0/16 dev tun0
in_ns gw1 ip route add 10.4.0.0/16 dev tun0
wait_tunnel 10
for ((i = 0; i < 50; i++)); do in_ns client ping -c 1 -W 1 -q 10.4.0.2 >/dev/null 2>&1 && break; sleep 0.2; done

peer_tx() {  # peer_tx NAME: bytes gw1 sent to that peer
  gw_show 1 --json | grep -o "\"name\":\"$1\",\"up\":[a-z]*,\"remotes\":\[[^]]*\],\"tx_packets\":[0-9]*,\"tx_bytes\":[0-9]*" | grep -o '[0-9]*$'
}

b0=$(peer_tx site-b); c0=$(peer_tx site-c)
bg_ns server "$TMPD/xfer-b.log" "$XFER" server --port 5201 --count 4 --timeout 60
sb=$BG_PID
bg_ns server3 "$TMPD/xfer-c.log" "$XFER" server --port 5202 --count 4 --timeout 60
sc=$BG_PID
wait_listen server 5201
wait_listen server3 5202
in_ns client "$XFER" client --host 10.2.0.2 --port 5201 --conns 4 --bytes 1048576 --timeout 30 || fail "to site-b failed"
b1=$(peer_tx site-b); c1=$(peer_tx site-c)
((b1 > b0 + 4000000)) || fail "site-b's counter did not move for traffic to 10.2.0.2 ($b0 -> $b1)"
((c1 < c0 + 100000)) || fail "site-c carried traffic meant for site-b ($c0 -> $c1)"
in_ns client "$XFER" client --host 10.4.0.2 --port 5202 --conns 4 --bytes 1048576 --timeout 30 || fail "to site-c failed"
b2=$(peer_tx site-b); c2=$(peer_tx site-c)
((c2 > c1 + 4000000)) || fail "site-c's counter did not move for traffic to 10.4.0.2 ($c1 -> $c2)"
((b2 < b1 + 100000)) || fail "site-b carried traffic meant for site-c ($b1 -> $b2)"
wait_pid "$sb" 10 || true
wait_pid "$sc" 10 || true

json=$(gw_show 1 --json)
paths=$(grep -o '"path":"[^"]*"' <<<"$json")
log "gw1 associations: $(tr '\n' ' ' <<<"$paths")"
grep -q '192.0.2.1:9899 -> 192.0.2.2:9899' <<<"$paths" || fail "no association to site-b over wan0"
grep -q '198.18.0.1:9899 -> 198.18.0.3:9899' <<<"$paths" || fail "no association to site-c from 198.18.0.1"
log "PASS: two peers, each with its own association; the policy picks the peer"
