#!/usr/bin/env bash
# Side-by-side benchmark: direct routing, sctptund, wireguard-go and OpenVPN (static key, cipher
# none and default cipher) over the same WAN veth, measured one after another in the same run,
# interleaved round by round, with medians and ratios to direct routing and to wireguard-go.
#
#   client ---- gw1 ============ WAN veth ============ gw2 ---- server     (network namespaces)
#
# Usage: sudo bash bench/compare.sh [--rounds N] [--seconds S] [--quick] [--csv FILE]
#          [--size MB] [--pings N] [--loss PCT] [--contenders a,b,...] [--no-deps] [--build]
#          [--variant NAME=TRANSPORT_LINES[|PEER_LINES[|BINARY]]]...
# Installs its packages (bench/install-bench-deps) and builds ./build/sctptund and the
# request/response tool ./build/rr if they are missing.
# See bench/README.md for what each figure means and how it is measured.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

usage() {
  sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  cat <<'EOF'
Options:
  --rounds N          interleaved rounds; medians over them (default 3; --quick: 1)
  --seconds S         duration of each timed iperf3 run (default 10; --quick: 3)
  --quick             1 round, 3 s runs, 50 MB transfer, 100 pings: a smoke run of ~3 minutes
  --csv FILE          CSV output (default bench/results/compare-<timestamp>.csv; the printed
                      report goes beside it as .txt)
  --size MB           size of the fixed transfer for WAN bytes and CPU (default 200; --quick: 50)
  --pings N           pings for the RTT figures (default 200, at 10 ms intervals; --quick: 100)
  --loss PCT          random loss per WAN direction for the loss scenario (default 1)
  --contenders LIST   comma-separated subset of: direct,sctptund,sctptund-none,wireguard-go,
                      wireguard-go-modern,openvpn-none,openvpn-default (sctptund-none: encryption
                      = "none"; wireguard-go-modern: upstream's, $WIREGUARD_GO), sctptund@NAME
  --variant NAME=T[|P[|B]]  a contender sctptund@NAME: sctptund with the TOML lines T added to
                      [transport] and P to [[peer]] (';' separates lines), binary B; e.g. the
                      previous build: --variant 'old=||/tmp/sctptund.old'. Added to the contenders
                      unless --contenders lists them
  --no-deps           do not run bench/install-bench-deps
  --build             (re)build sctptund with packaging/dev.sh build even if ./build/sctptund exists
Environment: SCTPTUND (daemon binary, default ./build/sctptund), TOOLS_DIR (where rr is, default
  ./build), OVPN_DEFAULT_OPTS (options of the openvpn-default contender, default "--providers
  legacy default"), KEEP_TMP=1 (keep the logs).
EOF
}

rounds="" dur="" size_mb="" pings="" quick=0 csv="" loss=1 contenders_opt="" no_deps=0 force_build=0
variants=()
while (($#)); do
  case $1 in
    --rounds) rounds=${2:?--rounds needs a number}; shift 2 ;;
    --seconds) dur=${2:?--seconds needs a number}; shift 2 ;;
    --size) size_mb=${2:?--size needs a number of MB}; shift 2 ;;
    --pings) pings=${2:?--pings needs a number}; shift 2 ;;
    --loss) loss=${2:?--loss needs a percentage}; shift 2 ;;
    --csv) csv=${2:?--csv needs a file name}; shift 2 ;;
    --contenders) contenders_opt=${2:?--contenders needs a list}; shift 2 ;;
    --variant) variants+=("${2:?--variant needs NAME=LINES}"); shift 2 ;;
    --quick) quick=1; shift ;;
    --no-deps) no_deps=1; shift ;;
    --build) force_build=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if ((quick)); then
  rounds=${rounds:-1} dur=${dur:-3} size_mb=${size_mb:-50} pings=${pings:-100}
else
  rounds=${rounds:-3} dur=${dur:-10} size_mb=${size_mb:-200} pings=${pings:-200}
fi
for v in rounds dur size_mb pings loss; do
  if ! [[ ${!v} =~ ^[0-9]+$ ]] || ((${!v} < 1)); then
    echo "compare.sh: $v must be a positive integer, not '${!v}'" >&2; exit 2
  fi
done
((rounds <= 50 && dur <= 600 && size_mb <= 10000 && pings <= 10000 && loss <= 50)) ||
  { echo "compare.sh: limits: rounds <= 50, seconds <= 600, size <= 10000 MB, pings <= 10000, loss <= 50" >&2; exit 2; }
ovh_pings=$(((pings + 1) / 2))

[[ $(id -u) == 0 ]] || { echo "compare.sh: run it as root (sudo bash bench/compare.sh): it creates network namespaces" >&2; exit 1; }

t_start=$(date +%s)
stamp=$(date +%Y%m%d-%H%M%S)
[[ -n $csv ]] || csv="$here/results/compare-$stamp.csv"
mkdir -p "$(dirname "$csv")"
csv=$(cd "$(dirname "$csv")" && pwd)/$(basename "$csv")
report="${csv%.csv}.txt"

((no_deps)) || bash "$here/install-bench-deps"
TOOLS_DIR=${TOOLS_DIR:-$repo/build}  # rr, the request/response tool of the "ovh tcp" figure
need_build=0
if [[ -z ${SCTPTUND:-} ]]; then
  SCTPTUND=$repo/build/sctptund
  if ((force_build)) || [[ ! -x $SCTPTUND ]]; then need_build=1; fi
fi
[[ -x $TOOLS_DIR/rr ]] || need_build=1
if ((need_build)); then
  echo "compare.sh: building sctptund and the test tools (bash packaging/dev.sh build)"
  bash "$repo/packaging/dev.sh" build
fi
export SCTPTUND TOOLS_DIR

ROUTING=tunnel  # read by lib.sh: no WAN routes at first; contender_activate sets them
export ROUTING
# shellcheck source=../netns-tests/lib.sh
source "$repo/netns-tests/lib.sh"
# shellcheck source=lib_contenders.sh
source "$here/lib_contenders.sh"
# shellcheck source=lib_measure.sh
source "$here/lib_measure.sh"
need_cmds iperf3 wg wireguard-go openvpn nft ethtool jq awk sort getconf
need_tool rr

for v in "${variants[@]}"; do variant_parse "$v"; done
CONTENDERS=()
if [[ -n $contenders_opt ]]; then
  IFS=, read -r -a CONTENDERS <<<"$contenders_opt"
  for c in "${CONTENDERS[@]}"; do
    [[ " ${CONTENDERS_ALL[*]} " == *" $c "* || -n ${VARIANT_INDEX[${c#sctptund@}]:-} ]] ||
      fail "unknown contender '$c' (known: ${CONTENDERS_ALL[*]} sctptund@VARIANT)"
  done
else
  for c in "${CONTENDERS_ALL[@]}"; do
    # upstream's wireguard-go only where its binary is (WIREGUARD_GO)
    [[ $c == wireguard-go-modern && ! -x $WIREGUARD_GO ]] || CONTENDERS+=("$c")
  done
  for v in "${!VARIANT_INDEX[@]}"; do CONTENDERS+=("sctptund@$v"); done
fi

_set_rc() { return "$1"; }
_bench_exit() {
  local rc=$?
  set +e
  trap - ERR
  contenders_cleanup
  _set_rc "$rc"
  _cleanup  # lib.sh: stops every process started with bg_ns (by PID), deletes the namespaces
}
trap _bench_exit EXIT
trap 'echo "compare.sh: interrupted; stopping the tunnels and deleting the namespaces" >&2; exit 130' INT
trap 'exit 143' TERM

CLK_TCK=$(getconf CLK_TCK)

# ---- metrics ------------------------------------------------------------------------------------

METRICS=(tcp1_c2s tcp1_s2c tcp4_c2s tcp4_s2c rtt_avg rtt_p99 wan_per_payload retx_per_mb ovh_per_pkt ovh_small_tcp cpu_per_gb loss_c2s)
declare -A M_HEAD=(
  [tcp1_c2s]="1x c>s" [tcp1_s2c]="1x s>c" [tcp4_c2s]="4x c>s" [tcp4_s2c]="4x s>c"
  [rtt_avg]="rtt avg" [rtt_p99]="rtt p99" [wan_per_payload]="wan/pay" [retx_per_mb]="retx/MB" [ovh_per_pkt]="ovh B/p"
  [ovh_small_tcp]="ovh tcp" [cpu_per_gb]="cpu s/GB" [loss_c2s]="loss c>s")
declare -A M_CSV=(
  [tcp1_c2s]=tcp_1stream_client_to_server [tcp1_s2c]=tcp_1stream_server_to_client
  [tcp4_c2s]=tcp_4streams_client_to_server [tcp4_s2c]=tcp_4streams_server_to_client
  [rtt_avg]=ping_rtt_avg [rtt_p99]=ping_rtt_p99 [wan_per_payload]=wan_bytes_per_payload_byte
  [retx_per_mb]=tcp_retransmits_per_mb
  [ovh_per_pkt]=encap_overhead_bytes_per_packet
  [ovh_small_tcp]=encap_overhead_bytes_per_small_tcp_packet [cpu_per_gb]=cpu_seconds_per_gb
  [loss_c2s]="tcp_1stream_client_to_server_loss${loss}pct")
declare -A M_UNIT=(
  [tcp1_c2s]=Mbit/s [tcp1_s2c]=Mbit/s [tcp4_c2s]=Mbit/s [tcp4_s2c]=Mbit/s [rtt_avg]=ms [rtt_p99]=ms
  [wan_per_payload]=bytes/byte [retx_per_mb]=segments/MB [ovh_per_pkt]=bytes/packet
  [ovh_small_tcp]=bytes/packet [cpu_per_gb]=s/GB [loss_c2s]=Mbit/s)
declare -A M_BETTER=(
  [tcp1_c2s]=higher [tcp1_s2c]=higher [tcp4_c2s]=higher [tcp4_s2c]=higher [rtt_avg]=lower
  [rtt_p99]=lower [wan_per_payload]=lower [retx_per_mb]=lower [ovh_per_pkt]=lower
  [ovh_small_tcp]=lower [cpu_per_gb]=lower [loss_c2s]=higher)
declare -A M_FMT=(
  [tcp1_c2s]=%.0f [tcp1_s2c]=%.0f [tcp4_c2s]=%.0f [tcp4_s2c]=%.0f [rtt_avg]=%.3f [rtt_p99]=%.3f
  [wan_per_payload]=%.4f [retx_per_mb]=%.1f [ovh_per_pkt]=%.1f
  [ovh_small_tcp]=%.1f [cpu_per_gb]=%.2f [loss_c2s]=%.0f)

declare -A SAMPLE=()  # "contender|metric|round" -> value or NA
record() { SAMPLE["$1|$2|$3"]=$4; }

# ---- measuring ----------------------------------------------------------------------------------

m_rtt() {  # ping RTT average and p99 from the individual replies
  local c=$1 r=$2 out f="$TMPD/rtt.txt" n
  in_client "$TMPD/ping.out" $((pings / 50 + 15)) ping -n -c "$pings" -i 0.01 -W 1 10.2.0.2 || true
  out=$(cat "$TMPD/ping.out")
  { grep -oE 'time=[0-9.]+' <<<"$out" || true; } | cut -d= -f2 | sort -g >"$f"
  n=$(wc -l <"$f")
  if ((n < (pings + 1) / 2)); then
    log "warning: $c: only $n of $pings pings answered"
    record "$c" rtt_avg "$r" NA; record "$c" rtt_p99 "$r" NA; return 0
  fi
  record "$c" rtt_avg "$r" "$(awk '{s += $1} END {printf "%.4f", s / NR}' "$f")"
  record "$c" rtt_p99 "$r" "$(awk -v n="$n" 'BEGIN {k = int(0.99 * n); if (k < 0.99 * n) k++} NR == k {print; exit}' "$f")"
}

m_overhead() {  # WAN bytes per ping crossing minus the inner packet size (1012 + 8 + 20 = 1040)
  local c=$1 r=$2 b0 b1 out rx
  b0=$(contender_wan_bytes "$c") || { record "$c" ovh_per_pkt "$r" NA; return 0; }
  in_client "$TMPD/ping.out" $((ovh_pings / 50 + 15)) ping -n -q -c "$ovh_pings" -i 0.01 -W 1 -s 1012 10.2.0.2 || true
  out=$(cat "$TMPD/ping.out")
  b1=$(contender_wan_bytes "$c") || { record "$c" ovh_per_pkt "$r" NA; return 0; }
  rx=$({ grep -oE '[0-9]+ received' <<<"$out" || echo 0; } | awk '{print $1; exit}')
  if ((rx < (ovh_pings + 1) / 2)); then
    log "warning: $c: only $rx of $ovh_pings 1040-byte pings answered"
    record "$c" ovh_per_pkt "$r" NA; return 0
  fi
  record "$c" ovh_per_pkt "$r" "$(awk -v b=$((b1 - b0)) -v n="$rx" 'BEGIN {printf "%.2f", b / (2 * n) - 1040}')"
}

# The small-TCP-packet overhead: $RR_EXCHANGES request/response exchanges of $RR_BYTES-byte
# messages (rr, TCP_NODELAY, one exchange started every $RR_INTERVAL_US us) client -> server.
RR_PORT=5301 RR_EXCHANGES=1000 RR_BYTES=64 RR_INTERVAL_US=1000

_rr_listening() { [[ -n $(in_ns server ss -Hltn "sport = :$RR_PORT") ]]; }

_rr_counter() {  # _rr_counter NAME -> "PACKETS BYTES" of a counter of the server's table bench_rr
  in_ns server nft list counter inet bench_rr "$1" |
    awk '{for (i = 1; i < NF; i++) {if ($i == "packets") p = $(i + 1); if ($i == "bytes") b = $(i + 1)}}
         END {if (p == "" || b == "") exit 1; print p, b}'
}

# m_small_tcp: (WAN bytes - inner bytes) / inner packets of the rr run. The inner packets and
# their L3 bytes are counted exactly by nftables on the server's eth0 (TCP port $RR_PORT, both
# directions: requests, responses, ACKs, handshake and close); the WAN counter counts everything
# the contender sent meanwhile (SCTP SACKs, ...), which is the honest overhead.
m_small_tcp() {
  local c=$1 r=$2 tmo srv="" why="" i b0 b1 cin cout pin bin pout bout pkts bytes nx
  record "$c" ovh_small_tcp "$r" NA
  tmo=$((RR_EXCHANGES * RR_INTERVAL_US / 1000000 + 30))
  in_ns server nft delete table inet bench_rr 2>/dev/null || true
  if _rr_listening; then
    why="something already listens on port $RR_PORT in server"
  elif ! in_ns server nft -f - <<EOF
table inet bench_rr {
  counter rr_in {}
  counter rr_out {}
  chain pre {
    type filter hook prerouting priority -300; policy accept;
    iifname "eth0" tcp dport $RR_PORT counter name "rr_in"
  }
  chain post {
    type filter hook postrouting priority 300; policy accept;
    oifname "eth0" tcp sport $RR_PORT counter name "rr_out"
  }
}
EOF
  then
    why="could not install the nftables counters in server"
  else
    bg_ns server "$TMPD/rr-server.log" "$TOOLS_DIR/rr" server --port "$RR_PORT" \
      --req "$RR_BYTES" --resp "$RR_BYTES" --timeout $((tmo + 10))
    srv=$BG_PID
    for ((i = 0; i < 50; i++)); do _rr_listening && break; sleep 0.1; done
    sleep 0.2  # let the previous measurement's stragglers (delayed acknowledgements) pass
    if ! _rr_listening; then
      why="rr server not listening on port $RR_PORT after 5 s"
    elif ! b0=$(contender_wan_bytes "$c"); then
      why="could not read the WAN counters"
    else
      local crc=0 rc=0
      : >"$TMPD/rr.out"
      in_client "$TMPD/rr.out" $((tmo + 5)) "$TOOLS_DIR/rr" client --host 10.2.0.2 --port "$RR_PORT" \
        --count "$RR_EXCHANGES" --req "$RR_BYTES" --resp "$RR_BYTES" \
        --interval-us "$RR_INTERVAL_US" --timeout "$tmo" || crc=$?
      if ((crc == 0)); then
        wait_pid "$srv" 10 || rc=$?  # bounded; stops it if it does not end within 10 s
        srv=""
      fi
      sleep 0.3  # the last ACK of the close; the tunnel's own delayed acknowledgements
      nx=$({ grep -oE '^exchanges=[0-9]+' "$TMPD/rr.out" || true; } | cut -d= -f2)
      if ((crc != 0)); then
        why="rr client failed (exit status $crc; 124: killed by timeout): $(cat "$TMPD/rr.out")"
        why+=" $({ grep '^rr:' "$TMPD/client-stderr.log" || true; } | tail -n 1)"
      elif ((rc != 0)); then
        why="rr server failed (exit status $rc): $(tail -n 1 "$TMPD/rr-server.log")"
      elif [[ $nx != "$RR_EXCHANGES" ]]; then
        why="rr client did ${nx:-no} exchanges instead of $RR_EXCHANGES"
      elif ! b1=$(contender_wan_bytes "$c") || ! cin=$(_rr_counter rr_in) || ! cout=$(_rr_counter rr_out); then
        why="could not read the counters"
      else
        read -r pin bin <<<"$cin"
        read -r pout bout <<<"$cout"
        pkts=$((pin + pout)) bytes=$((bin + bout))
        if ((pin < RR_EXCHANGES || pout < RR_EXCHANGES)); then
          why="only $pin packets in and $pout out counted for $RR_EXCHANGES exchanges"
        else
          log "$c: small TCP: $nx exchanges ($(grep -oE 'elapsed_s=[0-9.]+' "$TMPD/rr.out")): inner $pin+$pout packets, $bytes bytes ($((bytes / pkts)) B/packet); WAN $((b1 - b0)) bytes"
          record "$c" ovh_small_tcp "$r" "$(awk -v w=$((b1 - b0)) -v b="$bytes" -v p="$pkts" 'BEGIN {printf "%.2f", (w - b) / p}')"
        fi
      fi
    fi
  fi
  [[ -z $srv ]] || stop_pid "$srv"
  in_ns server nft delete table inet bench_rr 2>/dev/null || true
  [[ -z $why ]] || log "warning: $c: small-TCP overhead: $why"
  return 0
}

m_fixed() {  # fixed-size transfer: WAN bytes per payload byte, retransmissions, CPU seconds per GB
  local c=$1 r=$2 t0 t1 b0 b1 payload retx
  record "$c" wan_per_payload "$r" NA; record "$c" retx_per_mb "$r" NA; record "$c" cpu_per_gb "$r" NA
  if t0=$(contender_cpu_ticks "$c") && b0=$(contender_wan_bytes "$c") &&
    run_iperf 1 $((size_mb * 8 / 10 + 60)) -n "${size_mb}M" &&
    t1=$(contender_cpu_ticks "$c") && b1=$(contender_wan_bytes "$c"); then :; else return 0; fi
  payload=$(jq -r '.end.sum_received.bytes' "$IPERF_OUT")
  retx=$(jq -r '.end.sum_sent.retransmits // empty' "$IPERF_OUT")
  record "$c" wan_per_payload "$r" "$(awk -v b=$((b1 - b0)) -v p="$payload" 'BEGIN {printf "%.5f", b / p}')"
  [[ -z $retx ]] || record "$c" retx_per_mb "$r" "$(awk -v x="$retx" -v p="$payload" 'BEGIN {printf "%.3f", x / (p / 1e6)}')"
  if [[ $c == direct ]]; then
    record "$c" cpu_per_gb "$r" NA  # no process: the forwarding happens in softirq context
  else
    record "$c" cpu_per_gb "$r" "$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v p="$payload" 'BEGIN {printf "%.4f", (t / hz) / (p / 1e9)}')"
  fi
}

m_tput() {  # m_tput C R METRIC IPERF-ARGS...
  local c=$1 r=$2 m=$3; shift 3
  if run_iperf 2 $((dur + 30)) -t "$dur" "$@"; then record "$c" "$m" "$r" "$(iperf_mbps)"
  else record "$c" "$m" "$r" NA; fi
}

m_loss() {
  local c=$1 r=$2
  wan_loss_on "$loss"
  m_tput "$c" "$r" loss_c2s -P 1
  wan_loss_off
}

run_contender() {
  local c=$1 r=$2 m
  if ! contender_alive "$c"; then
    log "warning: round $r: $c: a tunnel process is gone (pids: $(contender_pids "$c")); no figures"
    for m in "${METRICS[@]}"; do record "$c" "$m" "$r" NA; done
    return 0
  fi
  contender_activate "$c"
  if ! wait_path; then
    log "warning: round $r: $c: client cannot ping server through it; no figures"
    for m in "${METRICS[@]}"; do record "$c" "$m" "$r" NA; done
    return 0
  fi
  m_rtt "$c" "$r"
  m_overhead "$c" "$r"
  m_small_tcp "$c" "$r"
  m_fixed "$c" "$r"
  m_tput "$c" "$r" tcp1_c2s -P 1
  m_tput "$c" "$r" tcp1_s2c -P 1 -R
  m_tput "$c" "$r" tcp4_c2s -P 4
  m_tput "$c" "$r" tcp4_s2c -P 4 -R
  m_loss "$c" "$r"
  local line="" v
  for m in "${METRICS[@]}"; do
    v=${SAMPLE["$c|$m|$r"]}
    # shellcheck disable=SC2059  # the formats are the constants of M_FMT
    [[ $v == NA ]] || v=$(printf "${M_FMT[$m]}" "$v")
    line+=" ${M_HEAD[$m]// /}=$v"
  done
  log "round $r: $c:$line"
}

# ---- report -------------------------------------------------------------------------------------

declare -A MED=()
compute_medians() {
  local n=$1 c m
  for c in "${CONTENDERS[@]}"; do
    for m in "${METRICS[@]}"; do MED["$c|$m"]=$(median_of "$c|$m" "$n"); done
  done
}

print_table() {  # print_table TITLE KIND  (KIND: value | direct | wireguard-go)
  local title=$1 kind=$2 c m v ref
  printf '\n%s\n' "$title"
  printf '%-16s' "contender"
  for m in "${METRICS[@]}"; do printf '%10s' "${M_HEAD[$m]}"; done
  printf '\n'
  for c in "${CONTENDERS[@]}"; do
    printf '%-16s' "$c"
    for m in "${METRICS[@]}"; do
      v=${MED["$c|$m"]}
      if [[ $kind == value ]]; then
        # shellcheck disable=SC2059  # the formats are the constants of M_FMT
        if [[ $v == NA ]]; then v="-"; else v=$(printf "${M_FMT[$m]}" "$v"); fi
      elif [[ $m == retx_per_mb ]]; then
        v="-"  # a count near zero for the references: no meaningful ratio
      else
        ref=${MED["$kind|$m"]:-NA}
        v=$(ratio "$v" "$ref")
      fi
      printf '%10s' "$v"
    done
    printf '\n'
  done
}

write_results() {  # write_results ROUNDS_DONE
  local n=$1 c m i row
  compute_medians "$n"
  {
    echo "sctptund side-by-side benchmark, $(date '+%F %T'), $n of $rounds round(s) done"
    echo "  host: $(uname -r), $(nproc) CPUs; runs of $dur s, fixed transfer $size_mb MB, $pings pings (RTT), $ovh_pings pings of 1040 B (overhead), loss ${loss}% per WAN direction"
    echo "  small TCP packets (ovh tcp): $RR_EXCHANGES request/response exchanges of $RR_BYTES + $RR_BYTES bytes, one every $RR_INTERVAL_US us"
    echo "  sctptund: $SCTPTUND ($SCTPTUND_REV)"
    echo "  wireguard-go $(dpkg-query -W -f='${Version}' wireguard-go 2>/dev/null || echo '?'), openvpn $(dpkg-query -W -f='${Version}' openvpn 2>/dev/null || echo '?'), iperf3 $(dpkg-query -W -f='${Version}' iperf3 2>/dev/null || echo '?')"
    [[ -n ${OVPN_DATA_CHANNEL[none]:-} ]] && echo "  openvpn-none:    ${OVPN_DATA_CHANNEL[none]}"
    [[ -n ${OVPN_DATA_CHANNEL[default]:-} ]] && echo "  openvpn-default: ${OVPN_DATA_CHANNEL[default]} (--secret, $OVPN_DEFAULT_OPTS)"
    print_table "Medians (c>s: client->server, s>c: server->client, 1x/4x: TCP streams)" value
    _wanted direct && print_table "Ratio to direct routing (value / direct)" direct
    _wanted wireguard-go && print_table "Ratio to wireguard-go (value / wireguard-go)" wireguard-go
    cat <<EOF

Columns: 1x/4x c>s, s>c = iperf3 TCP goodput in Mbit/s, client->server / server->client, 1 or 4
streams; rtt avg/p99 = ping round trip in ms; wan/pay = WAN bytes (both directions, IP level) per
delivered payload byte of a $size_mb MB transfer; retx/MB = TCP segments retransmitted in that
transfer per MB (drops inside a tunnel, which inflate wan/pay); ovh B/p = WAN bytes per packet
minus the inner packet (1040-byte pings); ovh tcp = the same for small TCP packets: (WAN bytes -
inner bytes) / inner packets of $RR_EXCHANGES request/response exchanges of $RR_BYTES-byte messages
(the tunnel's own acknowledgements included); cpu s/GB = CPU seconds (user+sys) of the tunnel
processes of both gateways per GB of payload ("-" for direct: no process); loss c>s = 1 stream
with ${loss}% random loss in each WAN direction. Lower is better for rtt, wan/pay, retx, ovh, cpu.
Ratios are value / reference whatever the direction of "better". See bench/README.md.
EOF
  } >"$report"
  {
    printf 'contender,metric,unit,better,median,vs_direct,vs_wireguard_go'
    for ((i = 1; i <= n; i++)); do printf ',round%d' "$i"; done
    printf '\n'
    for c in "${CONTENDERS[@]}"; do
      for m in "${METRICS[@]}"; do
        row="$c,${M_CSV[$m]},${M_UNIT[$m]},${M_BETTER[$m]},${MED["$c|$m"]}"
        if [[ $m == retx_per_mb ]]; then row+=",-,-"
        else row+=",$(ratio "${MED["$c|$m"]}" "${MED["direct|$m"]:-NA}"),$(ratio "${MED["$c|$m"]}" "${MED["wireguard-go|$m"]:-NA}")"; fi
        for ((i = 1; i <= n; i++)); do row+=",${SAMPLE["$c|$m|$i"]:-NA}"; done
        echo "$row"
      done
    done
  } >"$csv"
}

# ---- main ---------------------------------------------------------------------------------------

SCTPTUND_REV="git $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
[[ -n $(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null) ]] && SCTPTUND_REV+=" + local changes"
SCTPTUND_REV+=", binary built $(date -r "$SCTPTUND" '+%F %T')"

log "contenders: ${CONTENDERS[*]}; $rounds round(s), $dur s per run, ${size_mb} MB transfer, $pings pings"
topo_up
contenders_setup
start_iperf_server

for ((r = 1; r <= rounds; r++)); do
  for c in "${CONTENDERS[@]}"; do run_contender "$c" "$r"; done
  write_results "$r"  # after every round, so an interrupted run still leaves its figures
done

cat "$report"
elapsed=$(($(date +%s) - t_start))
printf '\nCSV: %s\nreport: %s\ntook %d min %d s\n' "$csv" "$report" $((elapsed / 60)) $((elapsed % 60))
