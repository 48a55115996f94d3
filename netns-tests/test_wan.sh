#!/usr/bin/env bash
# test_wan: the tunnel over a WAN with delay and random loss (tools/delayline: these kernels have
# no netem), with FEC below SCTP and without it.
#
#   client ---- gw1 wan0 ===[ wan: wa | delayline | wb ]=== wan0 gw2 ---- server
#   10.1.0.2    192.0.2.1        10 ms each way,             192.0.2.2    10.2.0.2
#   fd01::2     [sctptund]       1 % loss each way            [sctptund]   fd02::2
#
#  1. FEC (both sides offer it, the default): 20 MB each way over IPv4 and 5 MB each way over
#     IPv6, byte-exact (SHA-256). The loss turns FEC on (SCTP retransmissions), both gateways
#     send parity, both rebuild lost datagrams from it; the delay line really dropped ~1 %.
#  2. Forgery: datagrams shaped as parity and as loss reports, with MACs no key made, sent from
#     gw1's address (another port: a configured peer's datagrams may come from any port) are
#     counted as forged and change nothing; a transfer afterwards is byte-exact.
#  2b. 20 MB through a 50 Mbit/s bottleneck (a queue of 200 ms, nothing lost): SCTP's
#     retransmission timer never expires (usrsctp's fast SACK path does not restart it; sctptund
#     sends its messages so that SACKs take the full path, which does: without that, the timer
#     fired every RTO of a steady transfer and cut the window to one packet).
#  3. Negotiation: gw2 restarts with [[peer]] fec = false (an older peer's config): gw1 logs that
#     the peer does not offer FEC, neither side frames or sends parity, and 4 MB each way over
#     the lossy WAN (v4 and v6) are byte-exact, with SCTP's own retransmissions alone.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmds nc dd jq
need_tool spray

topo_up
wan_delay_up
write_configs
start_gw 1
start_gw 2
wait_tunnel 10

dd if=/dev/urandom of="$TMPD/m20a" bs=1M count=20 status=none
dd if=/dev/urandom of="$TMPD/m20b" bs=1M count=20 status=none
dd if=/dev/urandom of="$TMPD/m5" bs=1M count=5 status=none
dd if=/dev/urandom of="$TMPD/m4" bs=1M count=4 status=none

# A path's FEC figures from `show --json`: "STATE PARITY_OUT DATA_IN LOST REBUILT UNRECOVERED".
fec_of() {
  gw_json "$1" | jq -r '[.peers[0].associations[0].paths[0] | .fec, .fec_parity_out, .fec_received,
    .fec_lost, .fec_rebuilt, .fec_unrecovered] | map(tostring) | join(" ")'
}

# ---- 1. FEC over 20 ms with 1 % loss -----------------------------------------------------------
wan_delay_set 10 1
log "step 1: WAN $WAN_DELAY; FEC offered by both"
for n in 1 2; do grep -q "FEC agreed" "$TMPD/gw$n.log" || fail "gw$n did not log that FEC was agreed"; done
nc_transfer client server 10.2.0.2 5001 "$TMPD/m20a"
nc_transfer server client 10.1.0.2 5002 "$TMPD/m20b"
nc_transfer client server fd02::2 5003 "$TMPD/m5"
nc_transfer server client fd01::2 5004 "$TMPD/m5"
for n in 1 2; do
  read -r state parity data lost rebuilt unrecovered <<<"$(fec_of "$n")"
  log "gw$n: fec $state, parity sent $parity; received $data data datagrams, $lost missing, $rebuilt rebuilt, $unrecovered left to SCTP"
  [[ $state == on ]] || fail "gw$n: FEC is '$state' on its path after transfers over a 1 % lossy WAN"
  ((parity > 0)) || fail "gw$n: sent no parity"
  ((lost > 0)) || fail "gw$n: found nothing missing although the WAN drops 1 %"
  ((rebuilt > 0)) || fail "gw$n: rebuilt nothing from parity"
  ((rebuilt * 2 > lost)) || fail "gw$n: rebuilt only $rebuilt of $lost missing datagrams"
  grep -q "FEC on for path" "$TMPD/gw$n.log" || fail "gw$n did not log that FEC started"
done
stats=$(wan_delay_stats)
log "delay line: $(tr '\n' ' ' <<<"$stats")"
for dir in ab ba; do
  lost=$(grep "^delayline $dir:" <<<"$stats" | grep -oE 'lost=[0-9]+' | cut -d= -f2)
  frames=$(grep "^delayline $dir:" <<<"$stats" | grep -oE ' frames=[0-9]+' | cut -d= -f2)
  ((lost * 200 > frames && lost * 50 < frames)) || fail "delay line $dir dropped $lost of $frames frames, not ~1 %"
done
log "PASS 1: FEC on both sides, transfers byte-exact over 1 % loss"

# ---- 2. forged parity and reports ----------------------------------------------------------------
wan_delay_set 10 0
before=$(gw_json 2 | jq '.transport.fec_forged')
# Parity: FEC header (kind 2), first seq 7, k 4, m 1, index 0, 16-byte symbol, a MAC of zeros.
parity="00004602""00000007""04010000""0010""$(printf '%032x' 0)""$(printf '%032x' 0)"
# A report (kind 3): 5 counters and 4 zero bytes, a MAC no key made.
report="00004603""$(printf '%08x' 1000 0 0 0 0 0)""$(printf '%032x' 12345)"
in_ns gw1 "$TOOLS_DIR/spray" --to 192.0.2.2 --port "$PORT" --bind 192.0.2.1 --sport 40123 \
  --payload "$parity" --count 20 --timeout 10 >"$TMPD/spray-parity.log" || fail "spray failed: $(cat "$TMPD/spray-parity.log")"
in_ns gw1 "$TOOLS_DIR/spray" --to 192.0.2.2 --port "$PORT" --bind 192.0.2.1 --sport 40123 \
  --payload "$report" --count 10 --timeout 10 >"$TMPD/spray-report.log" || fail "spray failed: $(cat "$TMPD/spray-report.log")"
grep -q "sent=20 .*payload=46" "$TMPD/spray-parity.log" || fail "forged parity not sent as 46-byte datagrams: $(cat "$TMPD/spray-parity.log")"
grep -q "sent=10 .*payload=44" "$TMPD/spray-report.log" || fail "forged reports not sent as 44-byte datagrams: $(cat "$TMPD/spray-report.log")"
sleep 0.5
after=$(gw_json 2 | jq '.transport.fec_forged')
log "gw2: fec_forged $before -> $after"
((after - before == 30)) || fail "gw2 counted $((after - before)) of 30 forged FEC datagrams"
nc_transfer client server 10.2.0.2 5005 "$TMPD/m5"
log "PASS 2: forged parity and reports counted and ignored"

# ---- 2b. a steady transfer: every acknowledgement restarts the retransmission timer ------------
wan_delay_set 10 0 50 200
t1=$(gw_json 1 | jq '.transport.sctp_data_timeouts')
nc_transfer client server 10.2.0.2 5009 "$TMPD/m20a"  # ~3.5 s at 50 Mbit/s: several RTOs (1 s)
t2=$(gw_json 1 | jq '.transport.sctp_data_timeouts')
log "gw1: SCTP retransmission timeouts $t1 -> $t2"
((t2 == t1)) || fail "gw1's retransmission timer expired $((t2 - t1)) times during a transfer over a path that lost nothing"
log "PASS 2b: no retransmission timeout while data flows"

# ---- 3. the peer does not offer FEC ---------------------------------------------------------------
wan_delay_set 10 1
stop_gw 2
PEER_SECURITY[2]="key_file = \"$(psk_file)\"
fec = false"
write_config 2
start_gw 2
wait_tunnel 20
for ((i = 0; i < 50; i++)); do grep -q "not offered by the peer" "$TMPD/gw1.log" && break; sleep 0.1; done
grep -q "not offered by the peer" "$TMPD/gw1.log" || fail "gw1 did not log that gw2 no longer offers FEC"
out1=$(gw_json 1 | jq '.transport.fec_data_out + .transport.fec_parity_out')
nc_transfer client server 10.2.0.2 5006 "$TMPD/m4"
nc_transfer server client 10.1.0.2 5007 "$TMPD/m4"
nc_transfer client server fd02::2 5008 "$TMPD/m4"
out2=$(gw_json 1 | jq '.transport.fec_data_out + .transport.fec_parity_out')
framed2=$(gw_json 2 | jq '.transport.fec_data_out + .transport.fec_parity_out')
retx=$(gw_json 1 | jq '[.peers[0].associations[].window.chunks_retransmitted] | add')
log "without FEC: gw1 framed/parity $out1 -> $out2, gw2 $framed2; gw1's SCTP retransmitted $retx chunks"
((out2 == out1)) || fail "gw1 framed $((out2 - out1)) datagrams for a peer that does not offer FEC"
((framed2 == 0)) || fail "gw2 (fec = false) framed $framed2 datagrams"
((retx > 0)) || fail "no SCTP retransmissions over a 1 % lossy WAN: was the loss on?"
log "PASS 3: without FEC on one side, plain SCTP, transfers byte-exact"
