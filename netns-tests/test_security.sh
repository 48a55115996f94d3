#!/usr/bin/env bash
# test_security: what the pre-shared keys and the SCTP stack keep out of the tunnel.
#   1. Wrong key: gw2 holds another key than gw1. No packet passes, both gateways count handshake
#      failures and log "authentication failed" with the peer's address, gw2 writes nothing to its
#      TUN. gw2 restarted with the right key: the tunnel works, every association is sealed.
#   2. Spray: a third namespace floods gw1's UDP port 9899 with hostile datagrams (tools/spray:
#      random bytes, SCTP packets with valid CRC32c -- random chunks, INITs, ABORTs and DATA with
#      random tags and TSNs --, truncated ones, probe-shaped ones), first from its own address,
#      then posing as gw2 (source 192.0.2.2:9899, so the datagrams pass the address check and
#      reach the SCTP stack). Meanwhile 30 MB go each way through the tunnel, byte-exact; the
#      daemons survive, keep their associations, and the counters show what was refused.
#   3. Replay: tcpdump in gw2 captures what gw1 sends during a small transfer; tools/replay resends
#      those IPv4 packets byte for byte from gw1 (raw socket, genuine source address). The SCTP
#      stack of gw2 counts the DATA as duplicates and nothing reaches gw2's TUN.
#   4. Forged sources: the server sends UDP to the client from its own addresses and from site 1's
#      LAN, gw1's WAN address and an unrelated one (v4, v6): only its own arrive, gw1 counts and
#      logs the rest (source_not_allowed); gw2's own ICMP time exceeded (from its TUN address)
#      still reaches the client.
#
#   client ---------- gw1 ============== WAN ============== gw2 ---------- server
#   10.1.0.2/24   10.1.0.1/24   192.0.2.1 <-- UDP 9899 --> 192.0.2.2   10.2.0.1/24   10.2.0.2/24
#                  [sctptund]   wan0    SCTP/UDP    wan0   [sctptund]
#                    spr0 198.19.0.1/24          ^ tcpdump -w (3.)   (2nd key in 1.)
#                     ||      ^ replay (3.): raw socket in gw1, the captured packets again
#                     ||
#                   eth0 198.19.0.2/24 (+ 192.0.2.2/32 for the spoofed round)
#                   spray   -- tools/spray --> 192.0.2.1:9899
#   xfer client ======================== tunnel ===========================> xfer server
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmds tcpdump ethtool jq nft ping
need_tool xfer
need_tool spray
need_tool replay
XFER=$TOOLS_DIR/xfer
SPRAY=$TOOLS_DIR/spray
REPLAY=$TOOLS_DIR/replay
SPRAY_COUNT=${SPRAY_COUNT:-20000}        # datagrams per spray round
SPRAY_RATE=${SPRAY_RATE:-10000}          # datagrams per second
BULK_BYTES=${BULK_BYTES:-31457280}       # 30 MB each way during each spray round
T_START=$(now_ms)

# ---- helpers --------------------------------------------------------------------------------

# gw_json, jnum: lib.sh
# The parts of `show --json` before and after the peers array: the gateway's own counters (where
# counters.handshake_failures is) and the peers' (where peers[].handshake_failures is).
json_global() { echo "${1%%\"peers\":\[*}"; }
json_peers() {
  [[ $1 == *'"peers":['* ]] || fail "no \"peers\" array in 'sctptund show --json': $(head -c 800 <<<"$1")"
  echo "${1#*\"peers\":\[}"
}
# The association ids of a gateway, sorted, on one line: they change if an association restarts.
assoc_ids() { grep -oE '"id"[[:space:]]*:[[:space:]]*[0-9]+' <<<"$1" | grep -oE '[0-9]+$' | sort -n | tr '\n' ' '; }

# sval FILE KEY: KEY=<n> from the summary line of the spray / replay tool in FILE.
sval() {
  local v
  v=$(grep -oE "(^|[ :])$2=[0-9]+" "$1" | tail -n 1 | grep -oE '[0-9]+$' || true)
  [[ -n $v ]] || fail "no $2=<n> in the output of $(basename "$1"): $(tail -n 3 "$1")"
  echo "$v"
}

alive() {  # alive N: gwN's daemon still runs
  kill -0 "${GW_PID[$1]}" 2>/dev/null || fail "gw$1's daemon (pid ${GW_PID[$1]}) has died"
}

# The refusal counters of gwN as "name=value ..." (into the associative array named by $2).
declare -A C=()
snapshot() {
  local n=$1 j k
  j=$(gw_json "$n")
  for k in datagrams_bad_checksum datagrams_unknown_source datagrams_malformed sctp_duplicate_data \
    sctp_bad_vtag sctp_out_of_the_blue tun_written_packets auth_failed not_sealed; do
    C[$n.$k]=$(jnum "$j" "$k")
  done
  C[$n.handshake_failures]=$(jnum "$(json_global "$j")" handshake_failures)
  C[$n.assoc_ids]=$(assoc_ids "$j")
}

# ---- topology: the four namespaces plus "spray" behind gw1 ------------------------------------

topo_up
ns_add spray
ip -n "${PFX}gw1" link add spr0 type veth peer name eth0 netns "${PFX}spray"
_addr gw1 spr0 198.19.0.1/24
_addr spray eth0 198.19.0.2/24
# gw1 must take the spoofed 192.0.2.2 from spr0 although its route to 192.0.2.2 is wan0.
_sysctl gw1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.spr0.rp_filter=0
link_wait_up gw1 spr0
link_wait_up spray eth0
in_ns spray ip route add default via 198.19.0.1
log "spray namespace ${PFX}spray up: eth0 198.19.0.2 <-> gw1 spr0 198.19.0.1"

# ---- 1. wrong key -----------------------------------------------------------------------------

log "=== 1. wrong key: gw2's [[peer]] key is not gw1's"
PEER_SECURITY[2]="key_file = \"$(psk_file other)\""
write_configs
cmp -s "$(psk_file)" "$(psk_file other)" && fail "'sctptund genkey' made the same key twice"
start_gw 1
start_gw 2
start=$(now_ms)
pings=0 passed=0 done=0
for ((i = 0; i < 30; i++)); do
  in_ns client ping -c 1 -W 1 -q 10.2.0.2 >/dev/null 2>&1 && passed=$((passed + 1))
  pings=$((pings + 1))
  ((passed == 0)) || fail "a ping passed client -> server although the gateways hold different keys"
  j1=$(gw_json 1)
  j2=$(gw_json 2)
  hf1=$(jnum "$(json_global "$j1")" handshake_failures)
  hf2=$(jnum "$(json_global "$j2")" handshake_failures)
  if ((pings >= 3 && hf1 > 0 && hf2 > 0)) &&
    grep -qE '192\.0\.2\.2:9899.*authentication failed|192\.0\.2\.1:9899.*authentication failed' \
      "$TMPD/gw1.log" "$TMPD/gw2.log"; then
    done=1
    break
  fi
  (($(now_ms) - start < 10000)) || break
  sleep 0.2
done
((done)) || fail "within 10 s: handshake_failures gw1=$hf1 gw2=$hf2, no 'authentication failed' log line with the peer's address, or too few pings ($pings)"
for n in 1 2; do
  j=$(gw_json "$n")
  peers=$(json_peers "$j")
  phf=$(jnum "$peers" handshake_failures)
  last=$(grep -oE '"last_handshake_failure"[[:space:]]*:[[:space:]]*"[^"]*"' <<<"$peers" | head -n 1 || true)
  tw=$(jnum "$j" tun_written_packets)
  log "gw$n: counters.handshake_failures=$(jnum "$(json_global "$j")" handshake_failures) peers[].handshake_failures=$phf tun_written_packets=$tw $last"
  ((phf > 0)) || fail "gw$n: peers[].handshake_failures is $phf"
  [[ $last == *"authentication failed"* ]] || fail "gw$n: last_handshake_failure does not say 'authentication failed': $last"
  ((tw == 0)) || fail "gw$n wrote $tw packets to its TUN although no handshake succeeded"
done
line1=$(grep -m 1 -E '192\.0\.2\.2:9899.*authentication failed' "$TMPD/gw1.log" || true)
line2=$(grep -m 1 -E '192\.0\.2\.1:9899.*authentication failed' "$TMPD/gw2.log" || true)
[[ -n $line1 || -n $line2 ]] || fail "no log line names the peer's address with 'authentication failed'"
log "gw1 log: ${line1:-(none)}"
log "gw2 log: ${line2:-(none)}"
log "$pings pings client -> server, none passed; handshakes refused after $(($(now_ms) - start)) ms"

log "restart gw2 with the right key"
stop_gw 2
unset 'PEER_SECURITY[2]'
write_config 2
start_gw 2
wait_tunnel 20
in_ns client ping -c 3 -i 0.2 -W 2 -q 10.2.0.2 >/dev/null || fail "ping client -> server failed with the right key"
for n in 1 2; do
  sec=$(grep -oE '"security"[[:space:]]*:[[:space:]]*"[^"]*"' <<<"$(gw_json "$n")" | sed -E 's/.*"([^"]*)"$/\1/' | tr '\n' ' ')
  [[ -n $sec ]] || fail "gw$n: no association with a \"security\" field after the restart"
  for s in $sec; do
    [[ $s == aes256-gcm || $s == chacha20-poly1305 ]] || fail "gw$n: an association is not sealed (security \"$s\")"
  done
  log "gw$n: associations sealed with: $sec"
done
log "1. PASS: different keys: no traffic, handshakes refused and logged; right key: sealed tunnel"

# ---- 2. spray ---------------------------------------------------------------------------------

# spray_round NAME SPRAY_ARGS...: spray gw1 in the background, run a bulk transfer through the
# tunnel while it hits, then check the transfer, the daemons and the associations.
spray_round() {
  local name=$1 out="$TMPD/spray-$1.log" spid xpid i base now running
  shift
  snapshot 1
  snapshot 2
  for k in "${!C[@]}"; do B[$k]=${C[$k]}; done
  bg_ns server "$TMPD/xfer-server-$name.log" "$XFER" server --port 5201 --count 1 --timeout 60
  xpid=$BG_PID
  wait_listen server 5201
  bg_ns spray "$out" "$SPRAY" --to 192.0.2.1 --port "$PORT" --count "$SPRAY_COUNT" --rate "$SPRAY_RATE" \
    --sctp-port "$PORT" --pool 2 --timeout 30 "$@"
  spid=$BG_PID
  # The transfer starts once the spray demonstrably hits gw1.
  base=$(( ${B[1.datagrams_bad_checksum]} + ${B[1.datagrams_unknown_source]} + ${B[1.datagrams_malformed]} ))
  for ((i = 0; i < 50; i++)); do
    j=$(gw_json 1)
    now=$(( $(jnum "$j" datagrams_bad_checksum) + $(jnum "$j" datagrams_unknown_source) + $(jnum "$j" datagrams_malformed) ))
    ((now > base)) && break
    sleep 0.1
  done
  ((now > base)) || fail "spray ($name): gw1 counted nothing refused within 5 s of the spray's start"
  log "spray ($name) hits gw1; $((BULK_BYTES / 1048576)) MB each way client <-> server meanwhile"
  in_ns client "$XFER" client --host 10.2.0.2 --port 5201 --conns 1 --bytes "$BULK_BYTES" --timeout 40 ||
    fail "spray ($name): the transfer through the tunnel failed during the spray"
  wait_pid "$xpid" 10 || fail "spray ($name): the xfer server did not confirm a byte-exact transfer"
  running=no
  kill -0 "$spid" 2>/dev/null && running=yes
  wait_pid "$spid" 30 || fail "spray ($name) failed (status $?): $(tail -n 3 "$out")"
  log "$(grep '^spray:' "$out")"
  log "spray ($name): transfer byte-exact; spray still running when it ended: $running"
  alive 1
  alive 2
  snapshot 1
  snapshot 2
  for k in datagrams_bad_checksum datagrams_unknown_source datagrams_malformed sctp_bad_vtag \
    sctp_out_of_the_blue sctp_duplicate_data auth_failed not_sealed; do
    D[1.$k]=$(( ${C[1.$k]} - ${B[1.$k]} ))
    D[2.$k]=$(( ${C[2.$k]} - ${B[2.$k]} ))
  done
  log "gw1 deltas ($name): bad_checksum=${D[1.datagrams_bad_checksum]} unknown_source=${D[1.datagrams_unknown_source]} malformed=${D[1.datagrams_malformed]} sctp_bad_vtag=${D[1.sctp_bad_vtag]} sctp_out_of_the_blue=${D[1.sctp_out_of_the_blue]} sctp_duplicate_data=${D[1.sctp_duplicate_data]} auth_failed=${D[1.auth_failed]} not_sealed=${D[1.not_sealed]}"
  log "gw2 deltas ($name): sctp_bad_vtag=${D[2.sctp_bad_vtag]} sctp_out_of_the_blue=${D[2.sctp_out_of_the_blue]} auth_failed=${D[2.auth_failed]} not_sealed=${D[2.not_sealed]}"
  for n in 1 2; do
    [[ ${C[$n.assoc_ids]} == "${B[$n.assoc_ids]}" ]] ||
      fail "spray ($name) disturbed gw$n's associations: ids ${B[$n.assoc_ids]}-> ${C[$n.assoc_ids]}"
    ((C[$n.handshake_failures] == B[$n.handshake_failures])) ||
      fail "spray ($name): gw$n's handshake_failures grew ${B[$n.handshake_failures]} -> ${C[$n.handshake_failures]}"
    ((D[$n.auth_failed] == 0 && D[$n.not_sealed] == 0)) ||
      fail "spray ($name): gw$n got messages that failed authentication (auth_failed +${D[$n.auth_failed]}, not_sealed +${D[$n.not_sealed]}): forged data reached the gateway"
  done
  S_SENT=$(sval "$out" sent)
  S_VALID=$(sval "$out" valid_crc)
  S_PROBE=$(sval "$out" probe)
  S_ASSOC=$(sval "$out" to_assoc)
  S_BADCRC=$(sval "$out" expect_bad_crc)
  S_MALFORMED=$(sval "$out" expect_malformed)
  ((S_SENT == SPRAY_COUNT)) || fail "spray ($name) sent $S_SENT of $SPRAY_COUNT datagrams"
  # At least 90% of what was sent must be accounted for: a little may die in a full socket buffer.
  ((D[1.datagrams_bad_checksum] * 10 >= S_BADCRC * 9)) ||
    fail "spray ($name): gw1 counted ${D[1.datagrams_bad_checksum]} bad checksums for $S_BADCRC sent"
  ((D[1.datagrams_malformed] * 10 >= S_MALFORMED * 9)) ||
    fail "spray ($name): gw1 counted ${D[1.datagrams_malformed]} malformed datagrams for $S_MALFORMED sent"
  wait_tunnel 5
}
declare -A B=() D=()

log "=== 2a. spray from the spray namespace's own address 198.19.0.2"
spray_round own
((D[1.datagrams_unknown_source] * 10 >= (S_VALID + S_PROBE) * 9)) ||
  fail "spray (own): gw1 counted ${D[1.datagrams_unknown_source]} datagrams from unknown sources; $S_VALID with a valid CRC32c and $S_PROBE probes were sent"
((D[1.sctp_bad_vtag] + D[1.sctp_out_of_the_blue] == 0)) ||
  fail "spray (own): datagrams from a stranger reached gw1's SCTP stack (bad_vtag +${D[1.sctp_bad_vtag]}, out_of_the_blue +${D[1.sctp_out_of_the_blue]})"
unk=$(grep -m 1 -E "datagram from 198\.19\.0\.2:[0-9]+, which is no peer's address" "$TMPD/gw1.log" || true)
[[ -n $unk ]] || fail "gw1 did not log the unknown source 198.19.0.2"
log "gw1 log: $unk"
log "2a. PASS: unknown source refused (unknown_source +${D[1.datagrams_unknown_source]}, bad_checksum +${D[1.datagrams_bad_checksum]}, malformed +${D[1.datagrams_malformed]}); tunnel undisturbed"

log "=== 2b. spray posing as gw2: source 192.0.2.2:9899"
in_ns spray ip addr add 192.0.2.2/32 dev eth0
spray_round spoofed --bind 192.0.2.2 --sport "$PORT"
in_ns spray ip addr del 192.0.2.2/32 dev eth0
((D[1.datagrams_unknown_source] == 0)) ||
  fail "spray (spoofed): gw1 counted ${D[1.datagrams_unknown_source]} unknown sources although every datagram came from 192.0.2.2"
refused=$((D[1.sctp_bad_vtag] + D[1.sctp_out_of_the_blue]))
((refused * 2 >= S_ASSOC)) ||
  fail "spray (spoofed): gw1's SCTP stack refused only $refused packets (bad vtag + out of the blue); $S_ASSOC carried a forged tag to an association's ports"
log "2b. PASS: spoofed datagrams reached the SCTP stack and were refused (sctp_bad_vtag +${D[1.sctp_bad_vtag]}, out_of_the_blue +${D[1.sctp_out_of_the_blue]}, bad_checksum +${D[1.datagrams_bad_checksum]}, malformed +${D[1.datagrams_malformed]}); tunnel undisturbed"

# ---- 3. replay --------------------------------------------------------------------------------

log "=== 3. replay of captured tunnel datagrams from gw1's own address"
# Without transmit checksum offload on gw1's wan0 the captured datagrams carry their final UDP
# checksums and are single (segmented) datagrams: what an attacker on a real wire would see.
in_ns gw1 ethtool -K wan0 tx off >/dev/null 2>&1 || fail "ethtool -K wan0 tx off failed in gw1"
PCAP=$TMPD/replay.pcap
bg_ns gw2 "$TMPD/tcpdump.log" timeout 30 tcpdump -i wan0 -n -U --immediate-mode -s 0 -Z root -c 400 -w "$PCAP" \
  "udp port $PORT and src host 192.0.2.1 and dst host 192.0.2.2"
tpid=$BG_PID
for ((i = 0; i < 50; i++)); do grep -q "listening on" "$TMPD/tcpdump.log" && break; sleep 0.1; done
grep -q "listening on" "$TMPD/tcpdump.log" || fail "tcpdump in gw2 did not start: $(cat "$TMPD/tcpdump.log")"
bg_ns server "$TMPD/xfer-server-replay.log" "$XFER" server --port 5202 --count 1 --timeout 30
xpid=$BG_PID
wait_listen server 5202
in_ns client "$XFER" client --host 10.2.0.2 --port 5202 --conns 1 --bytes 100000 --timeout 20 ||
  fail "the transfer to be captured failed"
wait_pid "$xpid" 10 || fail "the xfer server did not confirm the captured transfer"
sleep 0.3
stop_pid "$tpid"
in_ns gw1 ethtool -K wan0 tx on >/dev/null 2>&1 || fail "ethtool -K wan0 tx on failed in gw1"
[[ -s $PCAP ]] || fail "tcpdump wrote no capture"
log "$(grep -E 'packets (captured|received)' "$TMPD/tcpdump.log" | tr '\n' ' ')"

# Quiet now: measure gw2's counters over one second without traffic, then over the replay.
sleep 0.5
snapshot 2
t0=${C[2.tun_written_packets]}
sleep 1
snapshot 2
for k in "${!C[@]}"; do B[$k]=${C[$k]}; done
noise=$((B[2.tun_written_packets] - t0))
in_ns gw1 "$REPLAY" --pcap "$PCAP" --src 192.0.2.1 --dst 192.0.2.2 --udp-port "$PORT" --rate 5000 \
  --timeout 20 >"$TMPD/replay.log" 2>&1 || fail "replay failed: $(cat "$TMPD/replay.log")"
log "$(grep '^replay:' "$TMPD/replay.log")"
sleep 1
snapshot 2
alive 1
alive 2
R_SENT=$(sval "$TMPD/replay.log" replayed)
R_DATA=$(sval "$TMPD/replay.log" data_chunks)
((R_SENT >= 20)) || fail "only $R_SENT packets to replay were captured"
((R_DATA >= 10)) || fail "the capture holds only $R_DATA SCTP DATA chunks"
(($(sval "$TMPD/replay.log" truncated) == 0)) || fail "the capture holds truncated packets"
(($(sval "$TMPD/replay.log" bad_udp_checksum) == 0)) ||
  fail "captured datagrams carry bad UDP checksums (offload): their replay would not reach SCTP"
tun=$((C[2.tun_written_packets] - B[2.tun_written_packets]))
dup=$((C[2.sctp_duplicate_data] - B[2.sctp_duplicate_data]))
log "gw2: tun_written_packets +$noise in the quiet second before, +$tun over the replay; sctp_duplicate_data +$dup for $R_DATA replayed DATA chunks; sctp_bad_vtag +$((C[2.sctp_bad_vtag] - B[2.sctp_bad_vtag])); auth_failed +$((C[2.auth_failed] - B[2.auth_failed])); not_sealed +$((C[2.not_sealed] - B[2.not_sealed]))"
((tun == 0)) || fail "gw2 wrote $tun packets to its TUN during the replay: replayed data was delivered again"
((dup * 10 >= R_DATA * 9)) ||
  fail "gw2's SCTP stack counted $dup duplicate DATA chunks for $R_DATA replayed"
[[ ${C[2.assoc_ids]} == "${B[2.assoc_ids]}" ]] ||
  fail "the replay disturbed gw2's associations: ids ${B[2.assoc_ids]}-> ${C[2.assoc_ids]}"
wait_tunnel 5
bg_ns server "$TMPD/xfer-server-after.log" "$XFER" server --port 5203 --count 2 --timeout 30
xpid=$BG_PID
wait_listen server 5203
in_ns client "$XFER" client --host 10.2.0.2 --port 5203 --conns 2 --bytes 1048576 --timeout 20 ||
  fail "the transfer after the replay failed"
wait_pid "$xpid" 10 || fail "the xfer server did not confirm the transfer after the replay"
log "3. PASS: the replay was refused as duplicates by SCTP, nothing reached gw2's TUN; tunnel works"

# ---- 4. forged sources from behind the peer ---------------------------------------------------
# The server, behind gw2, sends 10 UDP datagrams to the client from each of its own addresses and
# of addresses it may not use: site 1's LAN, gw1's WAN address, an unrelated one (v4 and v6). Only
# its own reach the client; gw1 counts the rest per peer. An ICMP error from gw2 itself (time
# exceeded, from its TUN address) about the client's packet still reaches the client.
log "4. forged sources: the server sends from addresses that are not site 2's"
for a in 10.1.0.99/32 192.0.2.1/32 198.51.100.7/32; do in_ns server ip addr add "$a" dev lo; done
in_ns server ip -6 addr add fd01::99/128 dev lo nodad
in_ns client nft -f - <<EOF
table inet srccheck {
  counter own {}
  counter forged {}
  chain input {
    type filter hook input priority 0; policy accept;
    ip saddr 10.2.0.2 udp dport 7777 counter name "own"
    ip6 saddr fd02::2 udp dport 7777 counter name "own"
    ip saddr != 10.2.0.2 udp dport 7777 counter name "forged"
    ip6 saddr != fd02::2 udp dport 7777 counter name "forged"
  }
}
EOF
# "PEER GLOBAL": gw1's count of packets from site-b with a source it may not use, and its total.
not_allowed() { gw_json 1 | jq -r '"\(.peers[] | select(.name == "site-b") | .source_not_allowed) \(.counters.drops.source_not_allowed)"'; }
read -r before before_all <<<"$(not_allowed)"
for pair in "10.2.0.2 10.1.0.2" "10.1.0.99 10.1.0.2" "192.0.2.1 10.1.0.2" "198.51.100.7 10.1.0.2" \
  "fd02::2 fd01::2" "fd01::99 fd01::2"; do
  read -r src dst <<<"$pair"
  in_ns server "$SPRAY" --to "$dst" --port 7777 --bind "$src" --count 10 --payload 00 --timeout 10 \
    >>"$TMPD/spray-src.log" || fail "spray from $src failed: $(tail -n 3 "$TMPD/spray-src.log")"
done
sleep 0.5
nft_packets() { in_ns client nft list counter inet srccheck "$1" | grep -oE 'packets [0-9]+' | awk '{print $2}'; }
own=$(nft_packets own)
forged=$(nft_packets forged)
read -r after after_all <<<"$(not_allowed)"
log "client received $own datagrams from the server's own addresses, $forged from forged ones; gw1 source_not_allowed $before -> $after"
((own == 20)) || fail "the client received $own of the 20 datagrams the server sent from its own addresses"
((forged == 0)) || fail "$forged datagrams with forged sources reached the client through the tunnel"
((after - before == 40 && after_all - before_all == 40)) ||
  fail "gw1 counted $((after - before)) (peer) / $((after_all - before_all)) (all) of 40 forged datagrams as source_not_allowed"
grep -q "peer site-b: packet from .* dropped: not a source this peer may send from" "$TMPD/gw1.log" ||
  fail "gw1 did not log the forged sources"
out=$(in_ns client ping -c 1 -W 2 -t 2 10.2.0.2 2>&1 || true)
grep -q "From 10.255.0.2.*[Tt]ime to live exceeded" <<<"$out" ||
  fail "no time exceeded from gw2's TUN address for a ping with TTL 2: $out"
log "4. PASS: forged sources dropped and counted at gw1; gw2's own ICMP error passes"

log "PASS: wrong key, spray, replay and forged sources all kept out ($(( ($(now_ms) - T_START) / 1000 )) s)"
