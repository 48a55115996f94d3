#!/usr/bin/env bash
# test_nat_multipath: gw1 has two uplinks, each behind its own masquerading NAT; gw2 is public and
# has no address of gw1 in its config (issue "With several paths, each path is learned and kept
# separately"). gw1 has local = [100.64.0.2, 100.65.0.2] and remote = [192.0.2.2]: two paths
# (path 0 via nat1, path 1 via nat2; source-based policy routing sends each local out through its
# own NAT). gw2 learns both from gw1's authenticated probes (src/transport/udp/usrsctp_paths.cpp), on
# its single socket, keyed by gw1's path id.
#  1. Learning, one path after the other: nat2 holds UDP back until gw2 has learned path 0
#     (192.0.2.10:40xxx, via nat1; pings v4+v6 pass), then lets it through and gw2 adds path 1
#     (192.0.2.20:41xxx, via nat2) -- so gw2's order (and its primary, path 0) is deterministic.
#     Both paths are "learned" and up, path 0 is gw2's primary; paths_learned = 2, path_moves = 0.
#     gw1's two paths are configured, not learned. Learning the second path does not move
#     gw2's traffic off the first (no failover or failback logged).
#  2. NAT rebinding of the second path only: during a transfer (rate-limited, both directions
#     verified by xfer), nat2 restarts with a new external address (out0 down, .20 -> .21, up:
#     its mappings are gone, so the port changes too). gw2's path 1 moves to 192.0.2.21:41xxx,
#     path 0 keeps its address and port and stays primary, there are still exactly two paths,
#     gw2 logged "path 1 moved" and never "path 0 moved"; the transfer is byte-exact on the same
#     associations. The time from the change to the move is printed.
#  3. Failover to the learned path ([transport] failover_ms = 300 on gw1, 500 on gw2): during a
#     transfer (xfer both ways, plus a paced gapmeter stream client -> server that measures the
#     longest delivery gap), nat1 drops all forwarded UDP. gw1 logs a failover from path 0 to
#     path 1, gw2 logs a failover to its path 1 (192.0.2.21:...), gw2's primary becomes the nat2
#     path, the traffic crosses nat2, and both transfers are byte-exact with a longest gap of at
#     most MAX_GAP_MS (default: gw2's failover time + 500 ms). gw2 notices the cut later than gw1
#     on purpose: gw1's first retransmission on path 1 is acknowledged on gw2's dead path, so gw1
#     must retransmit again soon after gw2 has switched, not after its backed-off RTO (2 s).
#     Then nat1 is restored: both
#     gateways fail back to path 0 (after the 1 s hold), gw2's path 0 is still 192.0.2.10 with
#     its old port, and at the end paths_learned = 2, path_moves = 1 (only nat2's rebinding).
#
#                wan0 100.64.0.2 --- in0 100.64.0.1 [nat1] out0 192.0.2.10 ---+
#               /                    masquerade to :40000-40999 random        |
#   client -- gw1                                                       [core] br0 ------ gw2 ------ server
#   10.1.0.2  [sctptund]                                              (a bridge, no IP)  192.0.2.2  10.2.0.2
#               \                    masquerade to :41000-41999 random        |          [sctptund]
#                wan1 100.65.0.2 --- in0 100.65.0.1 [nat2] out0 192.0.2.20 ---+
#                                                       (.21 after step 2's restart)
#   gw1: local = [100.64.0.2, 100.65.0.2], remote = [192.0.2.2]; no default route in main;
#        ip rule 1000 from 100.64.0.2 lookup 101 (default via nat1)
#        ip rule 1001 from 100.65.0.2 lookup 102 (default via nat2)
#   gw2: no remote for gw1; no route to 100.64.0.0/24 or 100.65.0.0/24
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmds nft
need_tool xfer
need_tool gapmeter

# A private copy of the daemon binary: daemons and `sctptund show` stay one version even if the
# build directory is relinked during the run (a shared machine; seen as "Permission denied").
cp "$SCTPTUND" "$TMPD/sctptund" || fail "could not copy $SCTPTUND"
SCTPTUND=$TMPD/sctptund
T_START=$(now_ms)

topo_up
# Replace the direct WAN veth by gw1 =(two NATs)= core -- gw2.
in_ns gw1 ip link del wan0
ns_add nat1 nat2 core
_sysctl nat1 net.ipv4.ip_forward=1
_sysctl nat2 net.ipv4.ip_forward=1
ip -n "${PFX}gw1" link add wan0 type veth peer name in0 netns "${PFX}nat1"
ip -n "${PFX}gw1" link add wan1 type veth peer name in0 netns "${PFX}nat2"
ip -n "${PFX}nat1" link add out0 type veth peer name p1 netns "${PFX}core"
ip -n "${PFX}nat2" link add out0 type veth peer name p2 netns "${PFX}core"
ip -n "${PFX}gw2" link add wan0 type veth peer name p0 netns "${PFX}core"
in_ns core ip link add br0 type bridge stp_state 0
for p in p0 p1 p2; do in_ns core ip link set "$p" master br0; in_ns core ip link set "$p" up; done
in_ns core ip link set br0 up
_addr gw1 wan0 100.64.0.2/24
_addr gw1 wan1 100.65.0.2/24
_addr nat1 in0 100.64.0.1/24
_addr nat1 out0 192.0.2.10/24
_addr nat2 in0 100.65.0.1/24
_addr nat2 out0 192.0.2.20/24
_addr gw2 wan0 192.0.2.2/24
# Source-based routing in gw1: each local address leaves through its own NAT. No default route in
# the main table, so a datagram not sent from one of the two locals goes nowhere. The rules need a
# priority below 9899: the daemon's WAN sockets carry fwmark 9899, and its bypass rule "fwmark
# 9899 lookup 9899" (priority 9899; tun/bypass.hpp) sends them to a copy of main that ends in
# "unreachable default" -- rules at the usual priorities (32765...) would never be reached.
in_ns gw1 ip route add default via 100.64.0.1 dev wan0 table 101
in_ns gw1 ip route add default via 100.65.0.1 dev wan1 table 102
in_ns gw1 ip rule add pref 1000 from 100.64.0.2 table 101
in_ns gw1 ip rule add pref 1001 from 100.65.0.2 table 102
for n in 1 2; do
  in_ns "nat$n" nft -f - <<EOF
table ip nat {
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "out0" meta l4proto udp masquerade to :$((39000 + 1000 * n))-$((39999 + 1000 * n)) random
    oifname "out0" masquerade
  }
}
EOF
  # Both directions of both NATs rate-limited to 40 Mbit/s, so the transfers last a few seconds.
  in_ns "nat$n" tc qdisc add dev out0 root tbf rate 40mbit burst 64kb latency 50ms
  in_ns "nat$n" tc qdisc add dev in0 root tbf rate 40mbit burst 64kb latency 50ms
  # Forwarded UDP/IP bytes towards gw2 (to see which NAT carries the tunnel).
  in_ns "nat$n" nft -f - <<'EOF'
table inet watch {
  counter fwd_out {}
  chain forwarded { type filter hook forward priority 10; policy accept; oifname "out0" meta l4proto udp counter name fwd_out; }
}
EOF
done
fwd_bytes() { in_ns "nat$1" nft list counter inet watch fwd_out | grep -oE 'bytes [0-9]+' | awk '{print $2}'; }
for l in gw1:wan0 gw1:wan1 nat1:in0 nat1:out0 nat2:in0 nat2:out0 core:p0 core:p1 core:p2 core:br0 gw2:wan0; do
  link_wait_up "${l%%:*}" "${l#*:}"
done
in_ns gw1 ping -c 1 -W 2 -q -I 100.64.0.2 192.0.2.2 >/dev/null || fail "gw1 cannot reach gw2 from 100.64.0.2 (through nat1)"
in_ns gw1 ping -c 1 -W 2 -q -I 100.65.0.2 192.0.2.2 >/dev/null || fail "gw1 cannot reach gw2 from 100.65.0.2 (through nat2)"
for a in 100.64.0.2 100.65.0.2; do
  in_ns gw2 ping -c 1 -W 1 -q "$a" >/dev/null 2>&1 && fail "gw2 reaches gw1's inside address $a: no NAT in the way"
done
log "NATs up: gw1 100.64.0.2 -> nat1 192.0.2.10, gw1 100.65.0.2 -> nat2 192.0.2.20 (masquerade) -> core -> gw2 192.0.2.2"

write_configs
# failover_ms = 300 (default 150): fewer spurious failovers when the shared machine stalls a
# namespace for a moment. gw2's 500: it notices the cut after gw1 (step 3).
sed -i -e 's/^local = \["192.0.2.1"\]/local = ["100.64.0.2", "100.65.0.2"]/' -e '/^kind = /a failover_ms = 300' "$(_gw_cfg 1)"
sed -i -e '/^remote = \["192.0.2.1"\]/d' -e '/^kind = /a failover_ms = 500' "$(_gw_cfg 2)"
grep -q '^failover_ms = 300' "$(_gw_cfg 1)" || fail "could not set failover_ms in gw1's config"
grep -q '^failover_ms = 500' "$(_gw_cfg 2)" || fail "could not set failover_ms in gw2's config"
grep -q '^local = \["100.64.0.2", "100.65.0.2"\]' "$(_gw_cfg 1)" || fail "could not rewrite gw1's local"
grep -q '^remote = \["192.0.2.2"\]' "$(_gw_cfg 1)" || fail "gw1's config does not name gw2's address"
grep -q '^remote' "$(_gw_cfg 2)" && fail "gw2's config still names gw1's address"
for n in 1 2; do
  "$SCTPTUND" --check -c "$(_gw_cfg "$n")" >"$TMPD/check$n.log" 2>&1 || fail "gw$n's config rejected: $(cat "$TMPD/check$n.log")"
done

# paths_of N: gwN's paths (those of its first association), one line each:
#   INDEX LOCAL REMOTE STATE PRIMARY LEARNED      ("" if there are none)
paths_of() {
  gw_json "$1" | tr -d ' \n' | { grep -oE '"paths":\[[^]]*\]' || true; } | head -n 1 |
    sed -e 's/^"paths":\[//' -e 's/\]$//' -e 's/},{/}\n{/g' | { grep '^{' || true; } |
    awk 'function f(k, m) {
           if (!match($0, "\"" k "\":(\"[^\"]*\"|true|false)")) return "?"
           m = substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3); gsub(/"/, "", m); return m
         }
         {print NR - 1, f("local"), f("remote"), f("state"), f("primary"), f("learned")}'
}
# path_remote N I: remote of gwN's path I; primary_index N / primary_remote N: index / remote of its primary.
path_remote() { paths_of "$1" | awk -v i="$2" '$1 == i {print $3}'; }
primary_index() { paths_of "$1" | awk '$5 == "true" && !n++ {print $1}'; }
primary_remote() { paths_of "$1" | awk '$5 == "true" && !n++ {print $3}'; }
path_count() { paths_of "$1" | wc -l; }
show_paths() { paths_of "$1" | sed "s/^/    gw$1 path /"; }
count_log() { grep -c -- "$2" "$TMPD/gw$1.log" || true; }
# sleep_until T: sleep until now_ms reaches T (at once if it has).
sleep_until() {
  local left=$(($1 - $(now_ms)))
  ((left > 0)) || return 0
  sleep "$((left / 1000)).$(printf '%03d' $((left % 1000)))"
}

# ---- 1. learning, path 0 first, then path 1 ----------------------------------------------------
# nat2 holds UDP back until gw2 has learned path 0 (learning order = gw2's path order).
in_ns nat2 nft -f - <<'EOF'
table inet hold {
  chain forwarded { type filter hook forward priority -10; policy accept; meta l4proto udp drop; }
}
EOF
start_gw 2
start_gw 1
wait_tunnel 15
learned0=""
for ((i = 0; i < 100; i++)); do
  learned0=$(path_remote 2 0)
  [[ -n $learned0 ]] && break
  sleep 0.1
done
[[ $learned0 == 192.0.2.10:40[0-9][0-9][0-9] ]] || fail "gw2's path 0 to gw1 is '$learned0', not nat1's 192.0.2.10:40xxx"
(($(path_count 2) == 1)) || fail "gw2 has $(path_count 2) paths while nat2 holds UDP back: $(paths_of 2)"
log "gw2 learned path 0 via nat1: $learned0 (nat2 still closed)"
in_ns nat2 nft delete table inet hold
t_open=$(now_ms)
learned1="" learn_ms=""
for ((i = 0; i < 200; i++)); do
  learned1=$(path_remote 2 1)
  if [[ -n $learned1 ]]; then learn_ms=$(($(now_ms) - t_open)); break; fi
  sleep 0.05
done
[[ -n $learn_ms ]] || fail "gw2 did not learn a second path within 10 s of opening nat2: $(paths_of 2)"
[[ $learned1 == 192.0.2.20:41[0-9][0-9][0-9] ]] || fail "gw2's path 1 to gw1 is '$learned1', not nat2's 192.0.2.20:41xxx"
# Both paths up (the PathMonitor probes both now), path 0 primary: in one snapshot, within 5 s.
for ((i = 0; i < 50; i++)); do
  p=$(paths_of 2)
  [[ $(awk '$4 == "up"' <<<"$p" | wc -l) == 2 && $(awk '$5 == "true" {print $1}' <<<"$p") == 0 ]] && break
  sleep 0.1
done
(($(wc -l <<<"$p") == 2)) || fail "gw2 has not exactly 2 paths: $p"
(($(awk '$4 == "up" && $6 == "true"' <<<"$p" | wc -l) == 2)) || fail "gw2's two paths are not both up and learned: $p"
[[ $(awk '$5 == "true" {print $1}' <<<"$p") == 0 ]] || fail "gw2's primary is not path 0 (via nat1): $p"
[[ $(awk '$1 == 0 {print $3}' <<<"$p") == "$learned0" ]] || fail "gw2's path 0 changed when path 1 was learned: $p"
p1=$(paths_of 1)
(($(wc -l <<<"$p1") == 2)) || fail "gw1 has not exactly 2 paths: $p1"
(($(awk '$6 == "false" && $3 == "192.0.2.2:9899"' <<<"$p1" | wc -l) == 2)) || fail "gw1's paths are not its two configured ones to 192.0.2.2:9899: $p1"
json=$(gw_json 2)
(($(jnum "$json" paths_learned) == 2)) || fail "gw2's paths_learned is $(jnum "$json" paths_learned), not 2"
(($(jnum "$json" path_moves) == 0)) || fail "gw2's path_moves is $(jnum "$json" path_moves), not 0"
grep -q "path 0 learned: .* -> $learned0 (proved by the peer's key)" "$TMPD/gw2.log" || fail "gw2 did not log path 0 learned"
grep -q "path 1 learned: .* -> $learned1 (proved by the peer's key)" "$TMPD/gw2.log" || fail "gw2 did not log path 1 learned"
in_ns client ping -c 3 -i 0.2 -W 2 -q 10.2.0.2 >/dev/null || fail "pings client -> server failed with two paths"
in_ns server ping -6 -c 3 -i 0.2 -W 2 -q fd01::2 >/dev/null || fail "pings server -> client (IPv6) failed with two paths"
show_paths 2
show_paths 1
learn_switches=$(count_log 2 "failover\|failback")
((learn_switches == 0)) || fail "gw2 switched its primary $learn_switches time(s) while learning the second path: $(grep -E 'failover|failback' "$TMPD/gw2.log" | sed 's/^sctptund\[info\]: //' | tr '\n' ';')"
log "PASS 1: gw2 learned path 0 $learned0 (nat1) and, ${learn_ms} ms after nat2 opened, path 1 $learned1 (nat2); both up, path 0 primary (challenges_out $(jnum "$json" challenges_out))"

# ---- 2. nat2 rebinds (new external address) during a transfer ----------------------------------
assocs_before=$(gw_json 2 | tr -d ' \n' | grep -oE '"id":[0-9]+' | sort | tr '\n' ' ')
xfer_start 5101 15000000 60
sleep 1.5
in_ns nat2 ip link set out0 down
in_ns nat2 ip addr del 192.0.2.20/24 dev out0
in_ns nat2 ip addr add 192.0.2.21/24 dev out0
in_ns nat2 ip link set out0 up
t_change=$(now_ms)
moved_ms="" r1="" carrier_ms=""
for ((i = 0; i < 200; i++)); do
  # (a veth's carrier may take up to ~1 s to come back after "link set up": printed, not bounded)
  [[ -z $carrier_ms && $(ip -n "${PFX}nat2" -br link show dev out0 | awk '{print $2}') == UP ]] && carrier_ms=$(($(now_ms) - t_change))
  r1=$(path_remote 2 1)
  if [[ $r1 == 192.0.2.21:* ]]; then moved_ms=$(($(now_ms) - t_change)); break; fi
  (($(now_ms) - t_change < 10000)) || break
  sleep 0.05
done
[[ -n $moved_ms ]] || fail "gw2's path 1 did not follow nat2 to 192.0.2.21 within 10 s: $(paths_of 2)"
[[ $r1 == 192.0.2.21:41[0-9][0-9][0-9] ]] || fail "gw2's path 1 moved to '$r1', not 192.0.2.21:41xxx"
[[ $(path_remote 2 0) == "$learned0" ]] || fail "gw2's path 0 changed ($learned0 -> $(path_remote 2 0)) when nat2 rebound"
log "nat2 changed 192.0.2.20 -> 192.0.2.21: gw2's path 1 moved $learned1 -> $r1 after ${moved_ms} ms (nat2's out0 had carrier again after ${carrier_ms:-?} ms); path 0 stays $learned0"
xfer_wait "across nat2's address change"
learned1=$r1
p=$(paths_of 2)
(($(wc -l <<<"$p") == 2)) || fail "gw2 has not exactly 2 paths after nat2's rebinding: $p"
[[ $(awk '$1 == 0 {print $3}' <<<"$p") == "$learned0" && $(awk '$1 == 1 {print $3}' <<<"$p") == "$learned1" ]] ||
  fail "gw2's paths changed after the move: $p"
# Path 0 stays (or, after a spurious failover on a loaded machine, is back within the 1 s hold) primary.
for ((i = 0; i < 30; i++)); do
  [[ $(awk '$5 == "true" {print $1}' <<<"$p") == 0 ]] && break
  sleep 0.1
  p=$(paths_of 2)
done
[[ $(awk '$5 == "true" {print $1}' <<<"$p") == 0 ]] || fail "gw2's primary is not path 0 after nat2's rebinding: $p"
assocs_after=$(gw_json 2 | tr -d ' \n' | grep -oE '"id":[0-9]+' | sort | tr '\n' ' ')
[[ $assocs_before == "$assocs_after" ]] || fail "associations changed across the move: $assocs_before -> $assocs_after"
grep -q "path 1 moved from 192.0.2.20:[0-9]* to $learned1 " "$TMPD/gw2.log" || fail "gw2 did not log path 1's move"
(($(count_log 2 "path 0 moved") == 0)) || fail "gw2 logged a move of path 0: $(grep 'path 0 moved' "$TMPD/gw2.log")"
json=$(gw_json 2)
(($(jnum "$json" paths_learned) == 2 && $(jnum "$json" path_moves) == 1)) ||
  fail "gw2's paths_learned/path_moves are $(jnum "$json" paths_learned)/$(jnum "$json" path_moves), not 2/1"
show_paths 2
log "PASS 2: 15 MB each way byte-exact across nat2's address change, same associations ($assocs_after); path 1 moved in ${moved_ms} ms, path 0 untouched"

# ---- 3. nat1 cut during a transfer: failover to the learned path via nat2, then failback -----------
fo1=$(count_log 1 "failover from path 0"); fo2=$(count_log 2 "failover from path 0")
fb1=$(count_log 1 "failback from path 1"); fb2=$(count_log 2 "failback from path 1")
bg_ns server "$TMPD/xfer-server2.log" "$TOOLS_DIR/xfer" server --port 5102 --count 1 --timeout 60
xs=$BG_PID
bg_ns server "$TMPD/gap-recv.log" "$TOOLS_DIR/gapmeter" recv --port 5103 --bytes 6000000 --timeout 60
gr=$BG_PID
wait_listen server 5102
wait_listen server 5103
bg_ns client "$TMPD/gap-send.log" "$TOOLS_DIR/gapmeter" send --host 10.2.0.2 --port 5103 --bytes 6000000 --rate 1000000 --timeout 60
gs=$BG_PID
bg_ns client "$TMPD/xfer-client2.log" "$TOOLS_DIR/xfer" client --host 10.2.0.2 --port 5102 --bytes 12000000 --timeout 60
xc=$BG_PID
sleep 1.5
n2_before=$(fwd_bytes 2)
in_ns nat1 nft -f - <<'EOF'
table inet cut {
  chain forwarded { type filter hook forward priority -10; policy accept; meta l4proto udp drop; }
}
EOF
t_cut=$(now_ms)
log "cut nat1 (all forwarded UDP dropped)"
fo_ms=""
for ((i = 0; i < 60; i++)); do
  if [[ $(primary_remote 2) == "$learned1" ]]; then fo_ms=$(($(now_ms) - t_cut)); break; fi
  (($(now_ms) - t_cut < 3000)) || break
  sleep 0.05
done
[[ -n $fo_ms ]] || fail "gw2's primary did not become the nat2 path $learned1 within 3 s of the cut: $(paths_of 2)"
log "gw2's primary is path 1 ($learned1, via nat2) ${fo_ms} ms after the cut"
max_gap=${MAX_GAP_MS:-$((fo_ms + 500))}
sleep_until $((t_cut + 3000))
n2_cut=$(($(fwd_bytes 2) - n2_before))
p=$(paths_of 2)
pg1=$(paths_of 1)
show_paths 2
show_paths 1
[[ $(awk '$5 == "true" {print $1}' <<<"$p") == 1 ]] || fail "gw2's primary is not path 1 during the cut: $p"
[[ $(awk '$1 == 0 {print $4}' <<<"$p") == down ]] || fail "gw2's path 0 (nat1) is not down during the cut: $p"
[[ $(awk '$5 == "true" {print $2}' <<<"$pg1") == 100.65.0.2:* ]] || fail "gw1's primary is not its path from 100.65.0.2 during the cut: $pg1"
(($(count_log 1 "failover from path 0") > fo1)) || fail "gw1 logged no failover from path 0"
(($(count_log 2 "failover from path 0") > fo2)) || fail "gw2 logged no failover from path 0"
grep -q "failover from path 0 .* to path 1 (192.0.2.2:$PORT -> $learned1," "$TMPD/gw2.log" || fail "gw2's failover did not go to $learned1"
((n2_cut > 1000000)) || fail "nat2 forwarded only $n2_cut bytes of UDP towards gw2 during the 3 s cut: the traffic did not move"
in_ns nat1 nft delete table inet cut
t_restore=$(now_ms)
log "restored nat1 (nat2 carried $n2_cut bytes towards gw2 during the cut)"
fb_ms=""
for ((i = 0; i < 120; i++)); do
  if [[ $(primary_index 2) == 0 && $(primary_index 1) == 0 ]]; then fb_ms=$(($(now_ms) - t_restore)); break; fi
  (($(now_ms) - t_restore < 6000)) || break
  sleep 0.05
done
[[ -n $fb_ms ]] || fail "no failback to path 0 within 6 s of the restore: gw1 $(paths_of 1); gw2 $(paths_of 2)"
log "both gateways back on path 0 ${fb_ms} ms after the restore (hold 1 s)"
wait_pid "$xc" 60 || fail "xfer client failed across the failover: $(cat "$TMPD/xfer-client2.log")"
wait_pid "$xs" 30 || fail "xfer server failed across the failover: $(cat "$TMPD/xfer-server2.log")"
wait_pid "$gs" 60 || fail "gapmeter sender failed across the failover: $(cat "$TMPD/gap-send.log")"
wait_pid "$gr" 30 || fail "gapmeter receiver failed across the failover: $(tail -3 "$TMPD/gap-recv.log")"
summary=$(grep '^received' "$TMPD/gap-recv.log") || fail "no summary from the gapmeter receiver"
[[ $summary == *"exact yes"* && $summary != *RESET* ]] || fail "gapmeter stream not byte-exact: $summary"
gap=$(awk '/^received/ {printf "%d", $6 + 0.5}' "$TMPD/gap-recv.log")
gaps=$(awk '$1 == "gap" {printf "%s ms at %+d ms; ", $3, $2 - '"$t_cut"'}' "$TMPD/gap-recv.log")
log "delivery gaps >= 50 ms (relative to the cut; restore at +$((t_restore - t_cut)) ms): ${gaps:-none}"
((gap <= max_gap)) || fail "longest delivery gap $gap ms across the failover exceeds $max_gap ms (gw2's failover took $fo_ms ms)"
(($(count_log 1 "failback from path 1") > fb1)) || fail "gw1 logged no failback"
(($(count_log 2 "failback from path 1") > fb2)) || fail "gw2 logged no failback"
p=$(paths_of 2)
[[ $(awk '$1 == 0 {print $3}' <<<"$p") == "$learned0" && $(awk '$1 == 1 {print $3}' <<<"$p") == "$learned1" ]] ||
  fail "gw2's paths changed across the cut (path 0 was $learned0, path 1 $learned1): $p"
(($(wc -l <<<"$p") == 2)) || fail "gw2 has not exactly 2 paths at the end: $p"
json=$(gw_json 2)
(($(jnum "$json" paths_learned) == 2 && $(jnum "$json" path_moves) == 1)) ||
  fail "gw2's paths_learned/path_moves are $(jnum "$json" paths_learned)/$(jnum "$json" path_moves), not 2/1"
log "path lines of gw2:"
grep -E "learned:|moved from|failover|failback" "$TMPD/gw2.log" | sed 's/^/  /'
log "path lines of gw1:"
grep -E "failover|failback" "$TMPD/gw1.log" | sed 's/^/  /'
log "PASS 3: nat1 cut: failover to the learned nat2 path (gw2 primary after ${fo_ms} ms), 12 MB each way + 6 MB paced byte-exact, longest gap ${gap} ms (limit ${max_gap}); failback ${fb_ms} ms after the restore"
log "times: path 1 learned ${learn_ms} ms after nat2 opened; path 1 moved ${moved_ms} ms after nat2's new address; failover gap ${gap} ms; total $((($(now_ms) - T_START) / 1000)) s"
