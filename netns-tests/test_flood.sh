#!/usr/bin/env bash
# test_flood: a flood of new flows from inside a site (security/limits item 5). gw1's flow table
# is limited to LIMIT flows for its one peer: by default the daemon's own limits (max 262144,
# max_per_peer 65536, so LIMIT = 65536); FLOW_LIMITS=N sets [flows] max = max_per_peer = N. The
# flood comes from one host: [flows] max_per_host is set to LIMIT (the one-host cap has its unit
# test, src/gateway/gateway_test.cpp).
#   1. An established connection first: rr (request/response, byte-checked both ways) runs over
#      one TCP connection client -> server for the whole test (RR_COUNT exchanges, one every
#      RR_INTERVAL_US); a 20 MB xfer each way warms the buffers up. Baseline: gw1's VmRSS/VmHWM.
#   2. Fill: tools/synflood sends LIMIT SYNs from the client's second address 10.1.0.3 to
#      distinct ports of 10.2.0.2; the table fills up. Measured: per-flow memory = (VmRSS now -
#      baseline) / (flows now - flows at baseline); it must be at most FLOW_BYTES.
#   3. Flood: FLOOD_COUNT (200000) more SYNs to distinct 5-tuples at FLOOD_RATE (20000) per
#      second (SYNs that gw1's kernel cannot queue into tun0 while the daemon is busy never become
#      flows: counted and reported; at least LIMIT must cross). gw1's `show --json` and VmRSS
#      are sampled every 0.5 s: flows.active and the peer's flows <= LIMIT at every sample, both
#      daemons alive. Afterwards: one eviction per flood flow beyond the room left, no flow_limit
#      drops, no flow_limit_hits (a full table always found an unestablished victim), and the
#      rr connection kept its SCTP port/stream: its flow was never evicted (an evicted flow comes
#      back on the next stream of the round-robin; seen with tcpdump on gw1's wan0 before and
#      after the flood: the DATA chunk headers are not sealed, only the messages in them).
#      gw2 refused no compressed header (drop reason hc_error: its decompressor budget of 65536
#      contexts per association; a refusal resets the contexts of every flow on that stream).
#   4. After the flood: rr completes every exchange byte-exact (its last ones after the flood),
#      a NEW connection (xfer, 10 MB each way) works, and memory stayed bounded:
#        gw1 VmHWM <= HWM_base + LIMIT * FLOW_BYTES + SLACK
#        gw2 VmHWM <= HWM_base + pool (2) * 65536 contexts * 256 B + SLACK
#      HWM_base: the daemon's peak after the warm-up (usrsctp and its buffers at working size).
#      FLOW_BYTES (1024): what one flow of the limit may cost gw1. Measured on x86-64: 610-630 B
#      per live flow (step 2 prints it: flow table node and bucket, eviction-queue entry,
#      header-compressor slot and index), plus growth once the full table churns that scales
#      with the limit and then stays flat: +5.3 MB at LIMIT 20000 (the same after 200000 and
#      600000 SYNs), +5 MB at 65536, i.e. up to ~270 B per flow of the limit (compressor slots
#      and indexes do not shrink). New flows go to the association with the fewest flows (the
#      association:flows in the log), so none carries more than its peer keeps header contexts
#      for. SLACK (8 MB): allocator and usrsctp queue jitter.
#      The general bound of a gateway is HWM_base + min(max, peers * max_per_peer) * FLOW_BYTES
#      + associations * 65536 decompressor contexts (src/gateway/gateway.hpp kDecompressContexts; the
#      budget pays for allocated slots of ~240 B). Here gw1 decompresses no new flows (the
#      server never answers) so its decompressor term is ~0; gw2 decompresses the headers of
#      every flood flow and keeps no flows for them, so its bound is the decompressor term.
#   The server drops the flood's SYNs (nftables in its namespace, counted): the flood's flows
#   never see a packet back, so they stay "not established" (src/gateway/flow_table.cpp) -- the idle
#   flows a full table evicts first. (Had the server answered RST, the flows would be closing,
#   evictable too; a SYN-ACK would make the client's kernel answer RST: closing again.)
#   A sanitized daemon (ASan: shadow memory, redzones, a quarantine of up to 256 MB of freed
#   memory) gets the bounds' growth terms * 4 + 320 MB; detected from the binary (__asan_init,
#   or SANITIZED=1), said in the log.
#
#   client ---------- gw1 ============== WAN ============== gw2 ---------- server
#   10.1.0.2/24   10.1.0.1/24   192.0.2.1 <-- UDP 9899 --> 192.0.2.2   10.2.0.1/24   10.2.0.2/24
#   10.1.0.3/24    [sctptund]  wan0 (tcpdump)  SCTP/UDP      [sctptund]            nft: drop SYNs
#    |             [flows] max = 20000                                             from 10.1.0.3
#    |  rr client (one TCP connection, whole test) ------------------------------>  rr server
#    '- synflood 10.1.0.3 -> 10.2.0.2:1-50000, sport 1024.. (220000 SYNs) ------->  (dropped)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmds nft tcpdump paste
need_tool synflood
need_tool rr
need_tool xfer
SYNFLOOD=$TOOLS_DIR/synflood
RR=$TOOLS_DIR/rr
XFER=$TOOLS_DIR/xfer
FLOW_LIMITS=${FLOW_LIMITS:-default}   # a number: [flows] max = max_per_peer = it; "default": none
FLOOD_COUNT=${FLOOD_COUNT:-200000}
FLOOD_RATE=${FLOOD_RATE:-20000}
FLOW_BYTES=${FLOW_BYTES:-1024}
SLACK_KB=$((8 * 1024))
RR_COUNT=${RR_COUNT:-2500}
RR_INTERVAL_US=${RR_INTERVAL_US:-20000}
DPORTS=1-50000 DPORT_SPAN=50000
# The flood comes from one host, so its share ([flows] max_per_host, by default max / 8) is
# raised to the peer's: what is tested here is the table and the peer's share under a flood.
if [[ $FLOW_LIMITS == default ]]; then
  TABLE_MAX=262144 LIMIT=65536   # the defaults (src/control/config.hpp); one peer: its share is the limit
  GW_EXTRA[1]=$(printf '[flows]\nmax_per_host = %d\n' "$LIMIT")
else
  [[ $FLOW_LIMITS =~ ^[1-9][0-9]*$ ]] || fail "FLOW_LIMITS must be a number or 'default', not '$FLOW_LIMITS'"
  TABLE_MAX=$FLOW_LIMITS LIMIT=$FLOW_LIMITS
  GW_EXTRA[1]=$(printf '[flows]\nmax = %d\nmax_per_peer = %d\nmax_per_host = %d\n' "$FLOW_LIMITS" "$FLOW_LIMITS" "$FLOW_LIMITS")
fi
FILL_SPORT=1024
FLOOD_SPORT=$((FILL_SPORT + (LIMIT + DPORT_SPAN - 1) / DPORT_SPAN))  # past the fill's 5-tuples

# ---- helpers --------------------------------------------------------------------------------

# gw_json, jnum: lib.sh
# jflows JSON KEY: KEY (active, max, evicted) of the gateway's "flows" object.
jflows() {
  local obj
  obj=$(grep -oE '"flows"[[:space:]]*:[[:space:]]*\{[^}]*\}' <<<"$1" | head -n 1 || true)
  [[ -n $obj ]] || fail "no \"flows\":{...} object in 'sctptund show --json': $(head -c 800 <<<"$1")"
  jnum "$obj" "$2"
}
# drops_of JSON: the non-zero drop counters ("reason=n ...") and the header-compression context
# resets of a `show --json`.
drops_of() {
  local d
  d=$(grep -oE '"drops"[[:space:]]*:[[:space:]]*\{[^}]*\}' <<<"$1" | grep -oE '"[a-z_]+"[[:space:]]*:[[:space:]]*[1-9][0-9]*' |
    tr -d '" ' | tr ':' '=' | tr '\n' ' ' || true)
  d=${d% }
  echo "drops: ${d:-none}; context resets sent $(jnum "$1" context_resets_sent) received $(jnum "$1" context_resets_received)"
}
# assoc_flows JSON: the flows bound to each association, "id:flows ..." (the association's "flows"
# follows its "srtt_ms").
assoc_flows() {
  local id_flows
  id_flows=$(grep -oE '"id"[[:space:]]*:[[:space:]]*[0-9]+|"srtt_ms"[[:space:]]*:[[:space:]]*[0-9]+[[:space:]]*,[[:space:]]*"flows"[[:space:]]*:[[:space:]]*[0-9]+' <<<"$1" |
    grep -oE '[0-9]+$' | paste -d: - - | tr '\n' ' ' || true)
  echo "${id_flows% }"
}
alive() {
  local n
  for n in 1 2; do kill -0 "${GW_PID[$n]}" 2>/dev/null || fail "gw$n's daemon (pid ${GW_PID[$n]}) has died"; done
}
# mem N FIELD: VmRSS / VmHWM of gwN's daemon in kB.
mem() {
  local v
  v=$(awk -v f="$2:" '$1 == f {print $2}' "/proc/${GW_PID[$1]}/status" 2>/dev/null || true)
  [[ -n $v ]] || fail "cannot read $2 of gw$1's daemon (pid ${GW_PID[$1]})"
  echo "$v"
}
mb() { awk -v k="$1" 'BEGIN {printf "%.1f MB", k / 1024}'; }
syns_at_server() { in_ns server nft list counter inet flood syn_in | grep -oE 'packets [0-9]+' | awk '{print $2}'; }
# Waits (bounded, 20 s) until the server's count of flood SYNs stays put for 0.5 s; prints it.
settle() {
  local last=-1 now i
  for ((i = 0; i < 40; i++)); do
    now=$(syns_at_server)
    [[ $now == "$last" ]] && break
    last=$now
    sleep 0.5
  done
  echo "$now"
}

# The (SCTP port, stream) pairs of the DATA / I-DATA chunks (stream 0, the control stream, left
# out) in the packets gw1 sent to gw2 in a pcap -- SCTP over UDP, or plain SCTP (IP protocol 132,
# a kernel transport) -- one "port/stream count" per line, the busiest first.
data_streams() {
  tcpdump -r "$1" -nn -x "src host 192.0.2.1 and (udp dst port $PORT or ip proto 132)" 2>/dev/null | awk '
    function flush(   ihl, p, type, len, sid, dport) {
      if (nb == 0) return
      ihl = (b[0] % 16) * 4; p = ihl                   # IPv4 header
      if (b[9] == 17) p += 8                           # UDP header (RFC 6951)
      if (nb < p + 12) { nb = 0; return }
      dport = b[p + 2] * 256 + b[p + 3]; p += 12       # SCTP common header
      while (p + 4 <= nb) {
        type = b[p]; len = b[p + 2] * 256 + b[p + 3]
        if (len < 4) break
        if ((type == 0 || type == 64) && p + 10 <= nb) {
          sid = b[p + 8] * 256 + b[p + 9]
          if (sid != 0) seen[dport "/" sid]++
        }
        p += int((len + 3) / 4) * 4
      }
      nb = 0
    }
    BEGIN { for (i = 0; i < 256; i++) hex[sprintf("%02x", i)] = i }
    /^[0-9]/ { flush(); next }                        # a new packet line
    /^[[:space:]]+0x[0-9a-f]+:/ {
      for (i = 2; i <= NF; i++) for (j = 1; j + 1 <= length($i); j += 2)
        b[nb++] = hex[substr($i, j, 2)]
    }
    END { flush(); for (k in seen) print k, seen[k] }' | sort -k2,2nr
}
# capture_stream NAME: 2 s of tcpdump on gw1's wan0; sets STREAM to the busiest data stream
# (sctp-port/stream) gw1 sent on.
capture_stream() {
  local f="$TMPD/$1.pcap" pid
  bg_ns gw1 "$TMPD/tcpdump-$1.log" tcpdump -i wan0 -nn -s 200 -U -w "$f" "udp port $PORT or ip proto 132"
  pid=$BG_PID
  sleep 2.5
  stop_pid "$pid"
  data_streams "$f" >"$TMPD/$1.streams"
  [[ -s $TMPD/$1.streams ]] || fail "no SCTP DATA chunks on a data stream in 2 s of gw1's wan0 ($1): is rr running?"
  log "$1: data streams gw1 -> gw2 (sctp-port/stream chunks): $(head -n 4 "$TMPD/$1.streams" | tr '\n' ' ')"
  STREAM=$(awk 'NR == 1 {print $1}' "$TMPD/$1.streams")
}

# ---- setup ----------------------------------------------------------------------------------

SANITIZED=${SANITIZED:-}
if [[ -z $SANITIZED ]]; then
  if grep -qa __asan_init "$SCTPTUND"; then SANITIZED=1; else SANITIZED=0; fi
fi

topo_up
in_ns client ip addr add 10.1.0.3/24 dev eth0
in_ns server nft -f - <<'EOF'
table inet flood {
  counter syn_in {}
  chain input {
    type filter hook input priority -10; policy accept;
    ip saddr 10.1.0.3 tcp flags & (syn | ack) == syn counter name "syn_in" drop
  }
}
EOF
write_configs
start_gw 1
start_gw 2
wait_tunnel 10
[[ $(cat "/proc/${GW_PID[1]}/comm") == sctptund ]] || fail "GW_PID[1]=${GW_PID[1]} is not the daemon"

j=$(gw_json 1)
[[ $(jflows "$j" max) == "$TABLE_MAX" ]] || fail "gw1 reports flows.max $(jflows "$j" max), expected $TABLE_MAX"

log "1. established connection: rr ($RR_COUNT exchanges, one every ${RR_INTERVAL_US} us) client -> server:5201"
bg_ns server "$TMPD/rr-server.log" "$RR" server --port 5201 --req 256 --resp 1024 --timeout 150
RR_SERVER=$BG_PID
wait_listen server 5201
bg_ns client "$TMPD/rr-client.log" "$RR" client --host 10.2.0.2 --port 5201 --count "$RR_COUNT" \
  --req 256 --resp 1024 --interval-us "$RR_INTERVAL_US" --timeout 140
RR_CLIENT=$BG_PID
RR_START=$(now_ms)
T_START_MS=${GW_START_MS[1]}

bg_ns server "$TMPD/xfer-server.log" "$XFER" server --port 5202 --count 2 --timeout 150
XFER_SERVER=$BG_PID
wait_listen server 5202
in_ns client "$XFER" client --host 10.2.0.2 --port 5202 --conns 1 --bytes 20971520 --timeout 30 \
  >"$TMPD/xfer-warmup.log" 2>&1 || fail "warm-up xfer (20 MB each way) failed: $(tail -n 3 "$TMPD/xfer-warmup.log")"
sleep 1
alive
j=$(gw_json 1)
FLOWS_BASE=$(jflows "$j" active)
RSS_BASE=$(mem 1 VmRSS) HWM_BASE=$(mem 1 VmHWM)
RSS2_BASE=$(mem 2 VmRSS) HWM2_BASE=$(mem 2 VmHWM)
log "baseline: gw1 $FLOWS_BASE flows, VmRSS $(mb "$RSS_BASE"), VmHWM $(mb "$HWM_BASE"); gw2 VmRSS $(mb "$RSS2_BASE"), VmHWM $(mb "$HWM2_BASE"); sanitized=$SANITIZED"
capture_stream before
STREAM_BEFORE=$STREAM

log "2. fill: $LIMIT SYNs from 10.1.0.3 to 10.2.0.2:$DPORTS (sport $FILL_SPORT..)"
in_ns client "$SYNFLOOD" --from 10.1.0.3 --to 10.2.0.2 --count "$LIMIT" --rate 10000 --dport "$DPORTS" \
  --sport "$FILL_SPORT" --timeout 30 >"$TMPD/synflood-fill.log" 2>&1 || fail "synflood (fill) failed: $(cat "$TMPD/synflood-fill.log")"
FILL_AT_SERVER=$(settle)
alive
j=$(gw_json 1)
FLOWS_FILL=$(jflows "$j" active) EVICTED_FILL=$(jflows "$j" evicted)
RSS_FILL=$(mem 1 VmRSS)
((FLOWS_FILL <= LIMIT)) || fail "gw1 holds $FLOWS_FILL flows, more than its limit $LIMIT"
NEW_FLOWS=$((FLOWS_FILL - FLOWS_BASE))
((NEW_FLOWS >= LIMIT / 2)) || fail "only $NEW_FLOWS new flows in gw1 after $LIMIT SYNs ($FILL_AT_SERVER reached the server)"
PER_FLOW=$(((RSS_FILL - RSS_BASE) * 1024 / NEW_FLOWS))
log "fill: $(sed -n 's/^synflood: //p' "$TMPD/synflood-fill.log"); $FILL_AT_SERVER reached the server;" \
  "gw1 $FLOWS_FILL flows ($EVICTED_FILL evicted; association:flows $(assoc_flows "$j")), VmRSS $(mb "$RSS_FILL"): $PER_FLOW bytes per flow"
if ((SANITIZED)); then
  log "fill: the daemon is sanitized: that per-flow figure includes ASan's redzones and quarantine, not checked"
else
  ((PER_FLOW <= FLOW_BYTES)) || fail "one flow costs $PER_FLOW bytes of gw1's RSS, more than the stated $FLOW_BYTES"
fi

log "3. flood: $FLOOD_COUNT SYNs at $FLOOD_RATE/s to distinct 5-tuples (sport $FLOOD_SPORT..)"
TUN_READ0=$(jnum "$j" tun_read_packets) TUN_DROP0=$(tun_stat 1 tx_dropped)
TUN_WRITTEN0=$(jnum "$(gw_json 2)" tun_written_packets)
bg_ns client "$TMPD/synflood.log" "$SYNFLOOD" --from 10.1.0.3 --to 10.2.0.2 --count "$FLOOD_COUNT" \
  --rate "$FLOOD_RATE" --dport "$DPORTS" --sport "$FLOOD_SPORT" --timeout 60
FLOOD_PID=$BG_PID
FLOOD_START=$(now_ms)
max_active=0 samples=0 max_rss=0
for ((i = 0; i < 150; i++)); do
  alive
  j=$(gw_json 1)
  a=$(jflows "$j" active) p=$(jnum "$j" flows)  # the first integer "flows": the peer's
  ((a <= LIMIT && p <= LIMIT)) || fail "gw1 holds $a flows ($p of its peer) during the flood, more than its limit $LIMIT"
  ((a > max_active)) && max_active=$a
  r=$(mem 1 VmRSS)
  ((r > max_rss)) && max_rss=$r
  samples=$((samples + 1))
  kill -0 "$FLOOD_PID" 2>/dev/null || break
  sleep 0.5
done
wait_pid "$FLOOD_PID" 70 || fail "synflood failed (status $?): $(cat "$TMPD/synflood.log")"
FLOOD_MS=$(($(now_ms) - FLOOD_START))
AT_SERVER=$(settle)
alive
j=$(gw_json 1)
FLOWS_END=$(jflows "$j" active) EVICTED=$(jflows "$j" evicted)
TUNNELED_SYNS=$((AT_SERVER - FILL_AT_SERVER))
DROP_LIMIT=$(jnum "${j#*\"drops\"}" flow_limit) LIMIT_HITS=$(jnum "$j" flow_limit_hits)
RSS_END=$(mem 1 VmRSS) HWM_END=$(mem 1 VmHWM) RSS2_END=$(mem 2 VmRSS) HWM2_END=$(mem 2 VmHWM)
log "flood: $(sed -n 's/^synflood: //p' "$TMPD/synflood.log") (${FLOOD_MS} ms until synflood exited)"
log "flood: gw1 read $(($(jnum "$j" tun_read_packets) - TUN_READ0)) packets from tun0 (its queue dropped $(($(tun_stat 1 tx_dropped) - TUN_DROP0))), $TUNNELED_SYNS SYNs reached the server;" \
  "gw1 flows: $FLOWS_END active (max $max_active in $samples samples; association:flows $(assoc_flows "$j")), $EVICTED evicted; flow_limit drops $DROP_LIMIT, hits $LIMIT_HITS"
J2=$(gw_json 2)
log "gw1 $(drops_of "$j"); gw2 wrote $(($(jnum "$J2" tun_written_packets) - TUN_WRITTEN0)) packets to tun0, $(drops_of "$J2")"
log "memory gw1: VmRSS $(mb "$RSS_BASE") base, $(mb "$RSS_FILL") full, $(mb "$max_rss") max sampled, $(mb "$RSS_END") after;" \
  "VmHWM $(mb "$HWM_BASE") -> $(mb "$HWM_END"); gw2: VmRSS $(mb "$RSS2_BASE") -> $(mb "$RSS2_END"), VmHWM $(mb "$HWM2_BASE") -> $(mb "$HWM2_END")"
((FLOWS_END <= LIMIT)) || fail "gw1 holds $FLOWS_END flows after the flood, more than its limit $LIMIT"
# The SYNs gw1's kernel could not queue into tun0 while the daemon was busy never became flows;
# what crossed must still have turned the table over once (every flow of the fill evicted).
((TUNNELED_SYNS >= LIMIT)) ||
  fail "only $TUNNELED_SYNS of $FLOOD_COUNT flood SYNs crossed the tunnel (need $LIMIT to turn the table over)"
# Every SYN that crossed opened a flow; beyond the room left after the fill (and the few
# baseline flows that may have expired meanwhile) each one needed an eviction.
MIN_EVICT=$((TUNNELED_SYNS - (LIMIT - FLOWS_FILL) - FLOWS_BASE))
((EVICTED - EVICTED_FILL >= MIN_EVICT)) ||
  fail "gw1 evicted $((EVICTED - EVICTED_FILL)) flows during the flood; $TUNNELED_SYNS new flows into a table with room for $((LIMIT - FLOWS_FILL)) need at least $MIN_EVICT"
((DROP_LIMIT == 0 && LIMIT_HITS == 0)) ||
  fail "gw1 refused new flows (flow_limit drops $DROP_LIMIT, hits $LIMIT_HITS) although unestablished flows were there to evict"

# gw1's compressors may not make gw2 hold more contexts than its budget (65536 per association):
# a refused header is dropped as hc_error and resets the contexts of every flow on that stream,
# the established ones included.
HC_ERR2=$(jnum "${J2#*\"drops\"}" hc_error)
((HC_ERR2 == 0)) ||
  fail "gw2 refused $HC_ERR2 compressed headers (hc_error; $(jnum "$J2" context_resets_sent) context resets): gw1's flows per association (association:flows $(assoc_flows "$j")) exceed gw2's decompressor budget"

capture_stream after
STREAM_AFTER=$STREAM
[[ $STREAM_AFTER == "$STREAM_BEFORE" ]] ||
  fail "the rr connection's packets moved from SCTP port/stream $STREAM_BEFORE to $STREAM_AFTER: its flow was evicted and reopened"
log "rr's flow kept its SCTP port/stream $STREAM_BEFORE through the flood (never evicted)"

log "4. after the flood: a new connection (xfer, 10 MB each way)"
in_ns client "$XFER" client --host 10.2.0.2 --port 5202 --conns 1 --bytes 10485760 --timeout 30 \
  >"$TMPD/xfer-after.log" 2>&1 || fail "a new connection after the flood failed: $(tail -n 3 "$TMPD/xfer-after.log")"
wait_pid "$XFER_SERVER" 10 || fail "xfer server: not every connection byte-exact (status $?): $(tail -n 2 "$TMPD/xfer-server.log")"
log "new connection: $(tail -n 1 "$TMPD/xfer-after.log")"

wait_pid "$RR_CLIENT" 120 || fail "rr client failed (status $?): $(tail -n 3 "$TMPD/rr-client.log")"
RR_MS=$(($(now_ms) - RR_START))
wait_pid "$RR_SERVER" 10 || fail "rr server failed (status $?): $(tail -n 3 "$TMPD/rr-server.log")"
grep -q 'status=ok' "$TMPD/rr-client.log" || fail "rr client: $(tail -n 2 "$TMPD/rr-client.log")"
((RR_START + RR_MS > FLOOD_START + FLOOD_MS)) || fail "rr finished before the flood did: lengthen RR_COUNT"
log "rr: $(grep -E '^exchanges=' "$TMPD/rr-client.log")"
alive
HWM_END=$(mem 1 VmHWM) HWM2_END=$(mem 2 VmHWM)

BOUND1=$((HWM_BASE + LIMIT * FLOW_BYTES / 1024 + SLACK_KB))
BOUND2=$((HWM2_BASE + 2 * 65536 * 256 / 1024 + SLACK_KB))
F1="HWM_base $(mb "$HWM_BASE") + $LIMIT * $FLOW_BYTES B + $(mb "$SLACK_KB")"
F2="HWM_base $(mb "$HWM2_BASE") + 2 * 65536 * 256 B + $(mb "$SLACK_KB")"
if ((SANITIZED)); then
  log "the daemon is sanitized (ASan): memory bounds' growth terms * 4 + 320 MB"
  BOUND1=$((HWM_BASE + (BOUND1 - HWM_BASE) * 4 + 320 * 1024))
  BOUND2=$((HWM2_BASE + (BOUND2 - HWM2_BASE) * 4 + 320 * 1024))
  F1="HWM_base + 4 * ($LIMIT * $FLOW_BYTES B + $(mb "$SLACK_KB")) + 320 MB"
  F2="HWM_base + 4 * (2 * 65536 * 256 B + $(mb "$SLACK_KB")) + 320 MB"
fi
log "gw1 VmHWM $(mb "$HWM_END") <= bound $(mb "$BOUND1") ($F1)"
log "gw2 VmHWM $(mb "$HWM2_END") <= bound $(mb "$BOUND2") ($F2)"
((HWM_END <= BOUND1)) || fail "gw1's peak memory $(mb "$HWM_END") exceeds the bound $(mb "$BOUND1")"
((HWM2_END <= BOUND2)) || fail "gw2's peak memory $(mb "$HWM2_END") exceeds the bound $(mb "$BOUND2")"
# The limit is logged, rate-limited: at least one line, at most one per 10 s of the test.
limit_lines=$(grep -c "flow limit reached" "$TMPD/gw1.log" || true)
log "gw1 logged 'flow limit reached' $limit_lines time(s): $(grep -m 1 "flow limit reached" "$TMPD/gw1.log" || true)"
((limit_lines >= 1)) || fail "gw1 did not log that the flow limit was reached"
((limit_lines <= ($(now_ms) - T_START_MS) / 10000 + 1)) || fail "gw1 logged 'flow limit reached' $limit_lines times: not rate-limited"
log "PASS: $FLOOD_COUNT SYNs in ${FLOOD_MS} ms, $((EVICTED - EVICTED_FILL)) flows evicted, flows <= $LIMIT throughout," \
  "established rr connection byte-exact, new connection works, memory bounded ($PER_FLOW B/flow measured$( ((SANITIZED)) && echo ', sanitized'))"
