#!/usr/bin/env bash
# test_nat: gw1 behind a masquerading NAT, gw2 public and without gw1's address in its config
# (issue "real networks", items 1 and 2). gw2 learns where gw1 is from gw1's authenticated probes
# only (a return-routability check with a cookie, src/transport/udp/usrsctp_paths.cpp).
#  1. Learning: pings v4+v6 and a byte-exact transfer each way; gw2 shows the learned path
#     192.0.2.10:<NAT port>.
#  2. Roaming: during a transfer (rate-limited, both directions verified by xfer), the NAT gets a
#     new external address (out0 down, 192.0.2.10 -> .11, up: the NAT's mappings are gone,
#     so the port changes too): the transfer completes byte-exact on the same associations, and
#     gw2's path moves to .11. The time from the change to the move is printed.
#  3. Keepalive: the NAT forgets idle UDP mappings after 5 s; [transport] keepalive_s = 2 and
#     heartbeat_ms = 30000 (so SCTP heartbeats do not hold the mapping). After 20 s of silence
#     the first ping from the server side answers, and the NAT port has not changed.
#  4. Restart: gw2 restarts (it forgets gw1's address); the tunnel comes back (gw1 probes while
#     it has no association).
#  5. Spoofing: a third namespace (evil, 198.18.0.2 / 2001:db8:e::2) attacks during a transfer,
#     from its own address (tools/replay: port 40400), with what it captured of gw1's datagrams
#     to gw2 and sees of gw2's probes to gw1 (gw2's outgoing WAN probes are mirrored to it, as
#     an on-path observer sees them):
#     a. forgery: a copy of gw1's probe with its MAC altered, 5 times (while the WAN is otherwise
#        quiet, until gw2 has counted all 5 as unauthenticated);
#     b. reflection: gw1's captured requests, replayed from evil, draw gw2's challenges; evil
#        sends each challenge back to gw2, and every probe it sees gw2 send to gw1 too, from
#        the same socket (tools/replay --reflect --tap), so that gw2, were it to answer its own
#        challenge, would hand evil the request that commits evil's address: evil reflected
#        something, gw2 counted all of it as unauthenticated (its own probes never verify);
#     c. forged SCTP control: ABORT, SHUTDOWN and INIT chunks with the verification tag and
#        ports of gw1's captured packets and a valid CRC32c (tools/replay --forge-chunks): gw2
#        counts them all as unproven control and its associations stay the same;
#     d. hostile datagrams (tools/spray) and three replays of gw1's captured datagrams --
#        authenticated probes and SCTP packets with valid tags -- rewritten to come from evil
#        (tools/replay --rewrite-src).
#     Throughout: gw2's path for gw1 stays, gw2 logs no path to evil, the transfer is byte-exact,
#     gw2's associations are the same, and gw2 sends evil nothing but a bounded number of 60-byte
#     challenges (no SCTP).
#
#   client ----- gw1 ---------- nat ------------------------------- gw2 ----- server
#   10.1.0.2     wan0           in0 100.64.0.1      out0            wan0 192.0.2.2    10.2.0.2
#                100.64.0.2     masquerade -> 192.0.2.10 (.11)  <-->                  (no route
#                [sctptund]     UDP ports 40000-40999 random        [sctptund]         to 100.64/24)
#                remote 192.0.2.2                                   no remote for gw1
#                                                                   ev0 198.18.0.1 (+ copies of
#                                                                    |   wan0's outgoing probes)
#                                                                   evil 198.18.0.2 (spray, replay:
#                                                                        forge, reflect, tap)
#
# WAN_FAMILY=6 (test_nat_v6.sh): the same over an IPv6-only WAN with NAT66 masquerade (gw1
# 2001:db8:64::2 behind nat 2001:db8:f::10 (then ::11), gw2 2001:db8:f::2, evil 2001:db8:e::2).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmds nc nft tcpdump
WAN_FAMILY=${WAN_FAMILY:-4}
if [[ $WAN_FAMILY == 6 ]]; then
  IN_GW=2001:db8:64::2 IN_NAT=2001:db8:64::1 NAT_A=2001:db8:f::10 NAT_B=2001:db8:f::11 GW2=2001:db8:f::2 PLEN=64
  NFT_FAMILY=ip6 PING="ping -6" EVIL=2001:db8:e::2 EVIL_GW=2001:db8:e::1 EVIL_PLEN=64
  ep() { echo "[$1]:$2"; }
else
  [[ $WAN_FAMILY == 4 ]] || { echo "WAN_FAMILY must be 4 or 6" >&2; exit 2; }
  IN_GW=100.64.0.2 IN_NAT=100.64.0.1 NAT_A=192.0.2.10 NAT_B=192.0.2.11 GW2=192.0.2.2 PLEN=24
  NFT_FAMILY=ip PING="ping" EVIL=198.18.0.2 EVIL_GW=198.18.0.1 EVIL_PLEN=24
  ep() { echo "$1:$2"; }
fi
need_tool xfer
need_tool spray
need_tool replay
# The payload size of an authenticated path probe (doc/PROTOCOL.md, "Path probes").
PROBE_LEN=60

topo_up
# Replace the direct WAN veth by gw1 -- nat -- gw2, and add evil beside gw2.
in_ns gw1 ip link del wan0
ns_add nat evil
_sysctl nat net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
ip -n "${PFX}gw1" link add wan0 type veth peer name in0 netns "${PFX}nat"
ip -n "${PFX}nat" link add out0 type veth peer name wan0 netns "${PFX}gw2"
ip -n "${PFX}gw2" link add ev0 type veth peer name eth0 netns "${PFX}evil"
_addr gw1 wan0 $IN_GW/$PLEN
_addr nat in0 $IN_NAT/$PLEN
_addr nat out0 $NAT_A/$PLEN
_addr gw2 wan0 $GW2/$PLEN
_addr gw2 ev0 $EVIL_GW/$EVIL_PLEN
_addr evil eth0 $EVIL/$EVIL_PLEN
in_ns gw1 ip route add default via $IN_NAT
in_ns evil ip route add default via $EVIL_GW
# The NAT forgets idle UDP mappings after 5 s (the keepalive must hold them), and masquerades
# to a random port of 40000-40999, so a new mapping has a new port.
_sysctl nat net.netfilter.nf_conntrack_udp_timeout=5 net.netfilter.nf_conntrack_udp_timeout_stream=5 || true
in_ns nat nft -f - <<EOF
table $NFT_FAMILY nat {
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "out0" meta l4proto udp masquerade to :40000-40999 random
    oifname "out0" masquerade
  }
}
EOF
# Both directions rate-limited to 40 Mbit/s, so the roaming transfer lasts several seconds.
in_ns nat tc qdisc add dev out0 root tbf rate 40mbit burst 64kb latency 50ms
in_ns nat tc qdisc add dev in0 root tbf rate 40mbit burst 64kb latency 50ms
for l in gw1:wan0 nat:in0 nat:out0 gw2:wan0 gw2:ev0 evil:eth0; do
  for ((i = 0; i < 50; i++)); do
    [[ $(ip -n "${PFX}${l%%:*}" -br link show dev "${l#*:}" | awk '{print $2}') == UP ]] && break
    sleep 0.1
  done
done
if [[ $WAN_FAMILY == 6 ]]; then  # an IPv6-only WAN: no IPv4 between gw1, the NAT and gw2
  for r in gw1:wan0 nat:in0 nat:out0 gw2:wan0; do
    [[ -z $(in_ns "${r%%:*}" ip -4 addr show dev "${r#*:}") ]] || fail "${r#*:} in ${r%%:*} has IPv4 on an IPv6-only WAN"
  done
fi
in_ns gw1 $PING -c 1 -W 2 -q $GW2 >/dev/null || fail "gw1 cannot reach gw2 through the NAT"
in_ns gw2 $PING -c 1 -W 1 -q $IN_GW >/dev/null 2>&1 && fail "gw2 reaches gw1's inside address: no NAT in the way"
log "NAT up (IPv$WAN_FAMILY WAN): gw1 $IN_GW -> nat $NAT_A (masquerade) -> gw2 $GW2"

write_configs
# [transport] (after its kind line): keepalives every 2 s; SCTP heartbeats too rare to matter.
sed -i -e "s/^local = \\[\"192.0.2.1\"\\]/local = [\"$IN_GW\"]/" -e "s/^remote = \\[\"192.0.2.2\"\\]/remote = [\"$GW2\"]/" \
  -e '/^kind = /a keepalive_s = 2\nheartbeat_ms = 30000' "$(_gw_cfg 1)"
sed -i -e '/^remote = \["192.0.2.1"\]/d' -e "s/^local = \\[\"192.0.2.2\"\\]/local = [\"$GW2\"]/" \
  -e '/^kind = /a keepalive_s = 2\nheartbeat_ms = 30000' "$(_gw_cfg 2)"
grep -q "^local = \\[\"$IN_GW\"\\]" "$(_gw_cfg 1)" || fail "could not rewrite gw1's local"
grep -q "^remote = \\[\"$GW2\"\\]" "$(_gw_cfg 1)" || fail "could not rewrite gw1's remote"
grep -q "^local = \\[\"$GW2\"\\]" "$(_gw_cfg 2)" || fail "could not rewrite gw2's local"
grep -q '^remote' "$(_gw_cfg 2)" && fail "gw2's config still names gw1's address"
for n in 1 2; do
  grep -q '^keepalive_s = 2' "$(_gw_cfg "$n")" || fail "no keepalive_s in gw$n's config: $(cat "$(_gw_cfg "$n")")"
  "$SCTPTUND" --check -c "$(_gw_cfg "$n")" >"$TMPD/check$n.log" 2>&1 || fail "gw$n's config rejected: $(cat "$TMPD/check$n.log")"
done

# learned_remote N: the remote of gwN's primary path (first association), "" if none.
learned_remote() {
  gw_json "$1" | tr -d ' \n' | grep -oE '"remote":"[^"]*","state":"[a-z]*","primary":true' | head -n 1 |
    sed -E 's/"remote":"([^"]*)".*/\1/'
}

# ---- 1. learning -------------------------------------------------------------------------------
start_gw 2
start_gw 1
wait_tunnel 15
remote=$(learned_remote 2)
[[ $remote == "$(ep "$NAT_A" 40)"[0-9][0-9][0-9] ]] || fail "gw2's path to gw1 is '$remote', not the NAT's $(ep "$NAT_A" 40xxx)"
json=$(gw_json 2)
tr -d ' \n' <<<"$json" | grep -q '"learned":true' || fail "gw2 does not show its path as learned"
log "gw2 learned gw1 at $remote (paths_learned $(jnum "$json" paths_learned), challenges_out $(jnum "$json" challenges_out))"
grep "path 0 learned: " "$TMPD/gw2.log" | grep -qF -- "-> $remote (proved by the peer's key)" || fail "gw2 did not log the learned path"
dd if=/dev/urandom of="$TMPD/blob" bs=1M count=8 status=none
nc_transfer client server 10.2.0.2 5001 "$TMPD/blob"
nc_transfer server client 10.1.0.2 5002 "$TMPD/blob"
log "PASS 1: gw2 learned gw1's NATed address; pings and 8 MB each way byte-exact"

# ---- 2. roaming: the NAT's external address changes mid-transfer -----------------------------
assocs_before=$(gw_json 2 | tr -d ' \n' | grep -oE '"id":[0-9]+' | sort | tr '\n' ' ')
xfer_start 5101 30000000 90
sleep 2
# The NAT restarts with a new external address: its interface goes down (which drops its
# masquerade mappings: the next ones get a new random port too) and comes back as .11.
in_ns nat ip link set out0 down
# (IPv6 addresses go with the link; IPv4 ones stay until deleted.)
if in_ns nat ip addr show dev out0 | grep -qF " $NAT_A/"; then in_ns nat ip addr del "$NAT_A/$PLEN" dev out0; fi
in_ns nat ip addr add $NAT_B/$PLEN dev out0
in_ns nat ip link set out0 up
t_change=$(now_ms)
moved_ms=
for ((i = 0; i < 200; i++)); do
  if [[ $(learned_remote 2) == "$(ep "$NAT_B" "")"* ]]; then moved_ms=$(($(now_ms) - t_change)); break; fi
  sleep 0.05
done
[[ -n $moved_ms ]] || fail "gw2 did not follow gw1 to $NAT_B within 10 s (path: $(learned_remote 2))"
log "NAT address changed $NAT_A -> $NAT_B: gw2 moved its path to $(learned_remote 2) after ${moved_ms} ms"
xfer_wait "across the address change"
assocs_after=$(gw_json 2 | tr -d ' \n' | grep -oE '"id":[0-9]+' | sort | tr '\n' ' ')
[[ $assocs_before == "$assocs_after" ]] || fail "associations changed across the move: $assocs_before -> $assocs_after"
grep -qF "path 0 moved from $(ep "$NAT_A" "")" "$TMPD/gw2.log" || fail "gw2 did not log the move"
grep -qF "to $(ep "$NAT_B" "")" "$TMPD/gw2.log" || fail "gw2 did not log the move to $NAT_B"
log "PASS 2: 30 MB each way byte-exact across the NAT's address change, same associations ($assocs_after), path moved in ${moved_ms} ms"

# ---- 3. keepalive: 20 s idle, the NAT forgets idle mappings after 5 s ---------------------------
port_before=$(learned_remote 2)
log "idle 20 s (NAT UDP timeout 5 s, keepalive_s = 2, heartbeat_ms = 30000)"
sleep 20
in_ns server ping -c 1 -W 2 -q 10.1.0.2 >/dev/null || fail "after 20 s idle the first ping server -> client got no answer"
port_after=$(learned_remote 2)
[[ $port_before == "$port_after" ]] || fail "the NAT mapping changed while idle ($port_before -> $port_after): keepalives did not hold it"
log "PASS 3: after 20 s idle the first ping passed; the NAT mapping stayed $port_after"

# ---- 4. gw2 restarts: it has forgotten gw1's address and must learn it again ----------------------
stop_gw 2
t_restart=$(now_ms)
start_gw 2
wait_tunnel 20
log "PASS 4: gw2 restarted and learned gw1 again at $(learned_remote 2): tunnel back $(($(now_ms) - t_restart)) ms after the restart began"
port_after=$(learned_remote 2)

# ---- 5. spoofing from a third address ----------------------------------------------------------
# Capture gw1's datagrams as gw2 receives them (probes and SCTP), during some traffic.
bg_ns gw2 "$TMPD/tcpdump.log" tcpdump -i wan0 -w "$TMPD/gw1.pcap" -U -s 0 "udp and src host $NAT_B and dst port $PORT"
tp=$BG_PID
sleep 1
in_ns client ping -c 20 -i 0.05 -q 10.2.0.2 >/dev/null || fail "pings during the capture failed"
sleep 3  # a keepalive probe or two
stop_pid "$tp"
# Authenticated probes: UDP length PROBE_LEN + 8, SCTP ports 0, magic "STPB"; requests: kind 3.
ulen=$((PROBE_LEN + 8))
if [[ $WAN_FAMILY == 6 ]]; then
  probe_filter="ip6 proto 17 and ip6[44:2] = $ulen and ip6[48:4] = 0 and ip6[52:4] = 0x53545042"
  request_filter="$probe_filter and ip6[56] = 3"
else
  probe_filter="udp[4:2] = $ulen and udp[8:4] = 0 and udp[12:4] = 0x53545042"
  request_filter="$probe_filter and udp[16] = 3"
fi
tcpdump -r "$TMPD/gw1.pcap" -w "$TMPD/requests.pcap" "$request_filter" 2>/dev/null
requests=$(tcpdump -r "$TMPD/requests.pcap" 2>/dev/null | wc -l)
((requests > 0)) || fail "no authenticated request of gw1 in the capture"
in_ns evil nft -f - <<EOF
table inet watch {
  counter from_gw2 {}
  counter from_gw2_not_challenge {}
  chain in {
    type filter hook input priority 0; policy accept;
    $NFT_FAMILY saddr { $GW2, $EVIL_GW } counter name from_gw2
    $NFT_FAMILY saddr { $GW2, $EVIL_GW } udp length != $ulen counter name from_gw2_not_challenge
  }
}
EOF
# The on-path view: copies of gw2's outgoing WAN probes (from the tunnel port, UDP length ulen,
# SCTP ports 0, the magic) go to evil too (addressed to gw1's NAT: evil's IP stack drops them,
# its tap sees them).
in_ns gw2 tc qdisc add dev wan0 clsact
if [[ $WAN_FAMILY == 6 ]]; then
  in_ns gw2 tc filter add dev wan0 egress protocol ipv6 u32 match ip6 protocol 17 0xff \
    match u16 "$PORT" 0xffff at 40 match u16 $ulen 0xffff at 44 match u32 0 0xffffffff at 48 \
    match u32 0x53545042 0xffffffff at 52 action mirred egress mirror dev ev0
else
  in_ns gw2 tc filter add dev wan0 egress protocol ip u32 match ip protocol 17 0xff \
    match u16 "$PORT" 0xffff at 20 match u16 $ulen 0xffff at 24 match u32 0 0xffffffff at 28 \
    match u32 0x53545042 0xffffffff at 32 action mirred egress mirror dev ev0
fi
# assoc_ids: the ids of gw2's associations, sorted.
assoc_ids() { gw_json 2 | tr -d ' \n' | grep -oE '"id":[0-9]+' | sort | tr '\n' ' '; }
assocs_before=$(assoc_ids)
before=$(gw_json 2)
xfer_start 5102 10000000 90
# a. One of gw1's authenticated probes, its MAC altered: a forgery with gw1's key tag, sent 5
# times from evil while nothing else comes from there, and counted before the flood (whose
# probe-shaped datagrams would otherwise use up the budget of probes gw2 checks). tools/spray
# sends it with one sendto() each.
pkt_hex=$(tcpdump -r "$TMPD/gw1.pcap" -x -c 1 "$probe_filter" 2>/dev/null |
  grep -E '^[[:space:]]+0x' | sed -E 's/^[[:space:]]+0x[0-9a-f]+:[[:space:]]+//' | tr -d ' \n')
if [[ $WAN_FAMILY == 6 ]]; then
  [[ $pkt_hex =~ ^6 ]] || fail "no authenticated probe of gw1 in the capture (got '${pkt_hex}')"
  ihl=40
else
  [[ $pkt_hex =~ ^4[5-9a-f] ]] || fail "no authenticated probe of gw1 in the capture (got '${pkt_hex}')"
  ihl=$((0x${pkt_hex:1:1} * 4))  # the IPv4 header's length (tcpdump -x starts at the IP header)
fi
probe_hex=${pkt_hex:$(((ihl + 8) * 2)):$((PROBE_LEN * 2))}
((${#probe_hex} == PROBE_LEN * 2)) || fail "no authenticated probe of gw1 in the capture (got '${pkt_hex}')"
last=$((PROBE_LEN * 2 - 2))
forged=${probe_hex:0:last}$(printf '%02x' $((0x${probe_hex:last:2} ^ 1)))
unauth0=$(jnum "$before" probes_unauthenticated)
in_ns evil "$TOOLS_DIR/spray" --to "$GW2" --port "$PORT" --payload "$forged" --count 5 --timeout 5 \
  >"$TMPD/forged.log" || fail "could not send the forged probe: $(cat "$TMPD/forged.log")"
grep -q "sent=5 .* payload=$PROBE_LEN\$" "$TMPD/forged.log" ||
  fail "the forged probe did not go out 5 times as $PROBE_LEN bytes: $(cat "$TMPD/forged.log")"
for ((i = 0; i < 50; i++)); do
  unauth=$(($(jnum "$(gw_json 2)" probes_unauthenticated) - unauth0))
  ((unauth >= 5)) && break
  sleep 0.1
done
((unauth >= 5)) || fail "the 5 forged probes were not all counted as unauthenticated ($unauth)"
# b. Reflection: gw1's requests from evil draw challenges; evil sends them back to gw2, and with
# them what it sees of gw2's probes to gw1 (among them the request carrying the challenge's
# cookie, were gw2 to answer its own challenge), from the same socket, for 2 s after the last
# request, at most 100 datagrams.
unauth1=$(jnum "$(gw_json 2)" probes_unauthenticated)
in_ns evil "$TOOLS_DIR/replay" --pcap "$TMPD/requests.pcap" --rewrite-src "$(ep "$EVIL" 40400)" --rate 5 \
  --reflect 2 --reflect-max 100 --tap eth0 --udp-port "$PORT" --timeout 10 >"$TMPD/reflect.log" ||
  fail "replay --reflect failed: $(cat "$TMPD/reflect.log")"
reflected=$(grep -oE 'reflected=[0-9]+' "$TMPD/reflect.log" | grep -oE '[0-9]+$')
tapped=$(grep -oE 'tapped=[0-9]+' "$TMPD/reflect.log" | grep -oE '[0-9]+$')
((reflected > 0)) || fail "evil got no challenge to reflect: $(cat "$TMPD/reflect.log")"
moves=$(grep -E 'learned|moved' "$TMPD/gw2.log" | grep -F "$EVIL" || true)
[[ -z $moves ]] || fail "gw2 took evil's address for gw1's under reflection: $moves"
remote=$(learned_remote 2)
[[ $remote == "$port_after" ]] || fail "gw2's path to gw1 moved to $remote under reflection (was $port_after)"
for ((i = 0; i < 20; i++)); do
  unauth_reflect=$(($(jnum "$(gw_json 2)" probes_unauthenticated) - unauth1))
  ((unauth_reflect >= reflected + tapped)) && break
  sleep 0.1
done
((unauth_reflect >= reflected + tapped)) ||
  fail "gw2 counted $unauth_reflect of the $reflected reflected and $tapped tapped probes as unauthenticated"
log "reflection: $requests captured requests of gw1 from evil; evil reflected $reflected datagrams of gw2 and sent $tapped of gw2's probes to gw1 back; gw2 counted $unauth_reflect unauthenticated"
# c. SCTP control chunks with a captured verification tag, from evil.
json_c=$(gw_json 2)
in_ns evil "$TOOLS_DIR/replay" --pcap "$TMPD/gw1.pcap" --rewrite-src "$(ep "$EVIL" 40400)" \
  --forge-chunks abort,shutdown,init,abort,shutdown,init --timeout 5 >"$TMPD/forge.log" ||
  fail "replay --forge-chunks failed: $(cat "$TMPD/forge.log")"
n_forged=$(grep -oE 'forged=[0-9]+' "$TMPD/forge.log" | grep -oE '[0-9]+$')
((n_forged == 6)) || fail "not all 6 forged SCTP packets went out: $(cat "$TMPD/forge.log")"
sleep 1  # an ABORT or SHUTDOWN taken would have ended an association by now
assocs_now=$(assoc_ids)
[[ $assocs_now == "$assocs_before" ]] ||
  fail "gw2's associations changed after forged ABORT/SHUTDOWN/INIT from evil: $assocs_before -> $assocs_now ($(grep -iE 'lost|closed|abort|shut' "$TMPD/gw2.log" | tail -n 3))"
unproven=$(($(jnum "$(gw_json 2)" datagrams_unproven_control) - $(jnum "$json_c" datagrams_unproven_control)))
((unproven >= n_forged)) || fail "gw2 counted $unproven of the $n_forged forged control packets as unproven control"
log "forged control: $n_forged SCTP packets (ABORT, SHUTDOWN, INIT) with gw1's captured tag from evil; gw2 counted $unproven as unproven control; associations unchanged ($assocs_now)"
# d. Hostile datagrams, then replays of the capture.
in_ns evil "$TOOLS_DIR/spray" --to "$GW2" --port "$PORT" --count 5000 --rate 2000 --timeout 20 >"$TMPD/spray.log" ||
  fail "spray failed: $(cat "$TMPD/spray.log")"
for round in 1 2 3; do
  in_ns evil "$TOOLS_DIR/replay" --pcap "$TMPD/gw1.pcap" --rewrite-src "$(ep "$EVIL" 40400)" --rate 500 --timeout 20 \
    >"$TMPD/replay$round.log" || fail "replay failed: $(cat "$TMPD/replay$round.log")"
done
xfer_wait "during the spoofing"
in_ns gw2 tc qdisc del dev wan0 clsact
after=$(gw_json 2)
remote=$(learned_remote 2)
[[ $remote == "$port_after" ]] || fail "gw2's path to gw1 moved to $remote under spoofing (was $port_after)"
grep -qF "$EVIL" <<<"$(grep -E 'learned|moved' "$TMPD/gw2.log")" && fail "gw2 logged a path to the spoofer"
assocs_now=$(assoc_ids)
[[ $assocs_now == "$assocs_before" ]] || fail "gw2's associations changed under spoofing: $assocs_before -> $assocs_now"
# Replayed SCTP packets with gw1's tags: heartbeats fed provisionally, the rest held back until
# the address is proven (never, here).
provisional=$(($(jnum "$after" datagrams_provisional) - $(jnum "$before" datagrams_provisional)))
held=$(($(jnum "$after" datagrams_unproven_control) - $(jnum "$before" datagrams_unproven_control)))
challenges=$(($(jnum "$after" challenges_out) - $(jnum "$before" challenges_out)))
to_evil=$(in_ns evil nft list counter inet watch from_gw2 | grep -oE 'packets [0-9]+' | grep -oE '[0-9]+')
not_challenge=$(in_ns evil nft list counter inet watch from_gw2_not_challenge | grep -oE 'packets [0-9]+' | grep -oE '[0-9]+')
log "spoofing: $(tail -n 1 "$TMPD/replay1.log"); gw2: $provisional replayed SCTP packets fed provisionally, $held held back, $unauth of the 5 forged probes counted unauthenticated, $challenges challenges; evil received $to_evil datagrams from gw2 ($not_challenge not challenges)"
((provisional + held > 0)) || fail "no replayed SCTP packet reached the verification-tag check (did the replay work?)"
((not_challenge == 0)) || fail "gw2 sent evil $not_challenge datagrams other than $PROBE_LEN-byte challenges"
((challenges <= 40)) || fail "gw2 sent $challenges challenges to the spoofer: not bounded"
log "PASS 5: forged, reflected, control-chunk and replayed datagrams from $EVIL did not move gw2's path or end its associations; the transfer was byte-exact"
