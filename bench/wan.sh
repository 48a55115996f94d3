#!/usr/bin/env bash
# WAN benchmark: direct routing, sctptund and wireguard-go (upstream's newest and Debian's) over
# a WAN with delay and random loss, side by side in one run, with medians and ratios.
#
#   client -- gw1 wan0 ==[wan: wa | delayline | wb]== wan0 gw2 -- server   (network namespaces)
#
# The delay line (netns-tests/tools/delayline.cpp; these kernels have no netem) holds every frame
# for the scenario's one-way delay, drops the scenario's share at random in each direction and,
# where a scenario says so, serialises at a bottleneck rate behind a bounded queue.
#
# Usage: sudo bash bench/wan.sh [--rounds N] [--seconds S] [--quick] [--scenarios a,b,...]
#          [--contenders a,b,...] [--variant NAME=TRANSPORT_LINES[|PEER_LINES[|BINARY]]]...
#          [--csv FILE] [--no-deps] [--build] [--no-chart]
# Installs its packages (bench/install-bench-deps), builds ./build/sctptund and the delay line if
# they are missing. See bench/README.md for the figures and the method.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

# name: one-way delay ms, loss % each way, bottleneck Mbit/s (0: none), its queue ms
declare -A SCENARIO=(
  [lan]="0 0 0 0"
  [rtt20]="10 0 0 0"
  [rtt20-loss0.1]="10 0.1 0 0"
  [rtt20-loss1]="10 1 0 0"
  [rtt100]="50 0 0 0"
  [rtt20-bneck200]="10 0 200 25"
)
SCENARIOS_DEFAULT=(lan rtt20 rtt20-loss0.1 rtt20-loss1 rtt100)

usage() {
  sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  cat <<'EOF'
Options:
  --rounds N          rounds, each over every scenario and contender; medians (default 2; --quick 1)
  --seconds S         duration of each iperf3 run (default 10; --quick 5); scenarios of 50 ms one
                      way or more run S+5 s (TCP needs longer to fill a long path)
  --quick             1 round of 5 s runs
  --scenarios LIST    comma-separated subset of: lan, rtt20, rtt20-loss0.1, rtt20-loss1, rtt100,
                      rtt20-bneck200 (default: all but rtt20-bneck200). lan: the delay line
                      without delay; rttN: N ms round trip; lossP: P % random loss each way;
                      bneck200: a 200 Mbit/s bottleneck with a 25 ms queue each way
  --contenders LIST   comma-separated subset of: direct, sctptund, wireguard-go-modern,
                      wireguard-go, sctptund@NAME (a --variant) (default: the first four)
  --variant NAME=T[|P[|B]]  a contender sctptund@NAME: sctptund with the TOML lines T added to
                      [transport] and P to [[peer]] (separate lines with ';'), binary B (default
                      $SCTPTUND); e.g. --variant 'w4=max_window = 4194304'. Adds it to the
                      contenders unless --contenders lists them.
  --csv FILE          CSV output (default bench/results/wan-<timestamp>.csv; the report beside it
                      as .txt, the chart as .png)
  --no-deps           do not run bench/install-bench-deps
  --build             rebuild with packaging/dev.sh build even if ./build/sctptund exists
  --no-chart          no PNG chart (it needs gnuplot)
Environment: SCTPTUND (default ./build/sctptund), TOOLS_DIR (delayline; default ./build),
  WIREGUARD_GO (upstream wireguard-go; default ../shared/tools/wireguard-go-modern/wireguard-go),
  KEEP_TMP=1 (keep the logs).
EOF
}

rounds="" dur="" quick=0 csv="" contenders_opt="" scenarios_opt="" no_deps=0 force_build=0 chart=1
variants=()
while (($#)); do
  case $1 in
    --rounds) rounds=${2:?--rounds needs a number}; shift 2 ;;
    --seconds) dur=${2:?--seconds needs a number}; shift 2 ;;
    --scenarios) scenarios_opt=${2:?--scenarios needs a list}; shift 2 ;;
    --contenders) contenders_opt=${2:?--contenders needs a list}; shift 2 ;;
    --variant) variants+=("${2:?--variant needs NAME=LINES}"); shift 2 ;;
    --csv) csv=${2:?--csv needs a file name}; shift 2 ;;
    --quick) quick=1; shift ;;
    --no-deps) no_deps=1; shift ;;
    --build) force_build=1; shift ;;
    --no-chart) chart=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "wan.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if ((quick)); then rounds=${rounds:-1} dur=${dur:-5}; else rounds=${rounds:-2} dur=${dur:-10}; fi
for v in rounds dur; do
  if ! [[ ${!v} =~ ^[0-9]+$ ]] || ((${!v} < 1)); then echo "wan.sh: $v must be a positive integer" >&2; exit 2; fi
done
((rounds <= 20 && dur <= 300)) || { echo "wan.sh: limits: rounds <= 20, seconds <= 300" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "wan.sh: run it as root: it creates network namespaces" >&2; exit 1; }

t_start=$(date +%s)
stamp=$(date +%Y%m%d-%H%M%S)
[[ -n $csv ]] || csv="$here/results/wan-$stamp.csv"
mkdir -p "$(dirname "$csv")"
csv=$(cd "$(dirname "$csv")" && pwd)/$(basename "$csv")
report="${csv%.csv}.txt"
png="${csv%.csv}.png"

((no_deps)) || bash "$here/install-bench-deps"
TOOLS_DIR=${TOOLS_DIR:-$repo/build}
need_build=0
if [[ -z ${SCTPTUND:-} ]]; then
  SCTPTUND=$repo/build/sctptund
  if ((force_build)) || [[ ! -x $SCTPTUND ]]; then need_build=1; fi
fi
[[ -x $TOOLS_DIR/delayline ]] || need_build=1
if ((need_build)); then
  echo "wan.sh: building sctptund and the test tools (bash packaging/dev.sh build)"
  bash "$repo/packaging/dev.sh" build
fi
export SCTPTUND TOOLS_DIR

ROUTING=tunnel
export ROUTING
# shellcheck source=../netns-tests/lib.sh
source "$repo/netns-tests/lib.sh"
# shellcheck source=lib_contenders.sh
source "$here/lib_contenders.sh"
# shellcheck source=lib_measure.sh
source "$here/lib_measure.sh"
need_cmds iperf3 wg wireguard-go nft ethtool jq awk sort getconf
need_tool delayline

for v in "${variants[@]}"; do variant_parse "$v"; done
CONTENDERS=()
if [[ -n $contenders_opt ]]; then
  IFS=, read -r -a CONTENDERS <<<"$contenders_opt"
else
  CONTENDERS=(direct sctptund wireguard-go-modern wireguard-go)
  for v in "${!VARIANT_INDEX[@]}"; do CONTENDERS+=("sctptund@$v"); done
fi
for c in "${CONTENDERS[@]}"; do
  case $c in
    direct | sctptund | wireguard-go | wireguard-go-modern) ;;
    sctptund@*) [[ -n ${VARIANT_INDEX[${c#sctptund@}]:-} ]] || fail "contender $c: no --variant ${c#sctptund@}" ;;
    *) fail "unknown contender '$c' (known: direct, sctptund, wireguard-go-modern, wireguard-go, sctptund@VARIANT)" ;;
  esac
done
SCENARIOS=()
if [[ -n $scenarios_opt ]]; then IFS=, read -r -a SCENARIOS <<<"$scenarios_opt"; else SCENARIOS=("${SCENARIOS_DEFAULT[@]}"); fi
for s in "${SCENARIOS[@]}"; do [[ -n ${SCENARIO[$s]:-} ]] || fail "unknown scenario '$s' (known: ${!SCENARIO[*]})"; done

_set_rc() { return "$1"; }
_bench_exit() {
  local rc=$?
  set +e
  trap - ERR
  contenders_cleanup
  _set_rc "$rc"
  _cleanup
}
trap _bench_exit EXIT
trap 'echo "wan.sh: interrupted; stopping the tunnels and deleting the namespaces" >&2; exit 130' INT
trap 'exit 143' TERM

CLK_TCK=$(getconf CLK_TCK)

# ---- metrics ------------------------------------------------------------------------------------

METRICS=(tcp1 tcp8 tcp1r p99 cpu retx)
declare -A M_HEAD=([tcp1]="1x c>s" [tcp8]="8x c>s" [tcp1r]="1x s>c" [p99]="ping p99" [cpu]="cpu s/GB" [retx]="retx/MB")
declare -A M_CSV=([tcp1]=tcp_1stream_client_to_server [tcp8]=tcp_8streams_client_to_server
  [tcp1r]=tcp_1stream_server_to_client [p99]=ping_rtt_p99_during_8streams [cpu]=cpu_seconds_per_gb_8streams
  [retx]=tcp_retransmits_per_mb_8streams)
declare -A M_UNIT=([tcp1]=Mbit/s [tcp8]=Mbit/s [tcp1r]=Mbit/s [p99]=ms [cpu]=s/GB [retx]=segments/MB)
declare -A M_BETTER=([tcp1]=higher [tcp8]=higher [tcp1r]=higher [p99]=lower [cpu]=lower [retx]=lower)
declare -A M_FMT=([tcp1]=%.0f [tcp8]=%.0f [tcp1r]=%.0f [p99]=%.1f [cpu]=%.2f [retx]=%.2f)

declare -A SAMPLE=()  # "scenario|contender|metric|round" -> value or NA
record() { SAMPLE["$1|$2|$3|$4"]=$5; }

m_tput() {  # m_tput S C R METRIC SECS IPERF-ARGS...
  local s=$1 c=$2 r=$3 m=$4 secs=$5; shift 5
  if run_iperf 2 $((secs + 30)) -t "$secs" "$@"; then record "$s" "$c" "$m" "$r" "$(iperf_mbps)"
  else record "$s" "$c" "$m" "$r" NA; fi
}

# 8 streams client -> server, with pings every 50 ms from the second second on (their p99 is
# the queueing the transfer causes), the tunnel processes' CPU time per GB and the inner TCP's
# retransmissions per MB.
m_bulk() {
  local s=$1 c=$2 r=$3 secs=$4 t0 t1 pp n bytes retx f="$TMPD/p99.txt"
  for m in tcp8 p99 cpu retx; do record "$s" "$c" "$m" "$r" NA; done
  t0=$(contender_cpu_ticks "$c") || return 0
  : >"$TMPD/bulk-ping.out"  # bg_ns appends
  bg_ns client "$TMPD/bulk-ping.out" timeout $((secs + 10)) ping -n -i 0.05 -W 2 -c $(((secs - 2) * 20)) 10.2.0.2
  pp=$BG_PID
  if ! run_iperf 1 $((secs + 30)) -t "$secs" -P 8; then stop_pid "$pp"; return 0; fi
  t1=$(contender_cpu_ticks "$c") || t1=""
  wait_pid "$pp" $((secs + 15)) || true
  record "$s" "$c" tcp8 "$r" "$(iperf_mbps)"
  bytes=$(jq -r '.end.sum_received.bytes' "$IPERF_OUT")
  retx=$(jq -r '.end.sum_sent.retransmits // empty' "$IPERF_OUT")
  [[ -z $retx ]] || record "$s" "$c" retx "$r" "$(awk -v x="$retx" -v b="$bytes" 'BEGIN {printf "%.3f", x / (b / 1e6)}')"
  if [[ $c != direct && -n $t1 ]]; then
    record "$s" "$c" cpu "$r" "$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v b="$bytes" 'BEGIN {printf "%.4f", (t / hz) / (b / 1e9)}')"
  fi
  { grep -oE 'time=[0-9.]+' "$TMPD/bulk-ping.out" || true; } | cut -d= -f2 | sort -g >"$f"
  n=$(wc -l <"$f")
  if ((n >= (secs - 2) * 10)); then
    record "$s" "$c" p99 "$r" "$(awk -v n="$n" 'BEGIN {k = int(0.99 * n); if (k < 0.99 * n) k++} NR == k {print; exit}' "$f")"
  else
    log "warning: $s: $c: only $n pings answered during the transfer"
  fi
}

run_contender() {
  local s=$1 c=$2 r=$3 secs=$4 m line="" v
  if ! contender_alive "$c"; then
    log "warning: round $r: $s: $c: a tunnel process is gone; no figures"
    for m in "${METRICS[@]}"; do record "$s" "$c" "$m" "$r" NA; done
    return 0
  fi
  contender_activate "$c"
  if ! wait_path; then
    log "warning: round $r: $s: $c: client cannot ping server through it; no figures"
    for m in "${METRICS[@]}"; do record "$s" "$c" "$m" "$r" NA; done
    return 0
  fi
  m_tput "$s" "$c" "$r" tcp1 "$secs" -P 1
  m_tput "$s" "$c" "$r" tcp1r "$secs" -P 1 -R
  m_bulk "$s" "$c" "$r" "$secs"
  for m in "${METRICS[@]}"; do
    v=${SAMPLE["$s|$c|$m|$r"]}
    # shellcheck disable=SC2059
    [[ $v == NA ]] || v=$(printf "${M_FMT[$m]}" "$v")
    line+=" ${M_HEAD[$m]// /}=$v"
  done
  log "round $r: $s: $c:$line"
}

# ---- report -------------------------------------------------------------------------------------

declare -A MED=()
REF=wireguard-go-modern

print_tables() {
  local s c m v ref
  for s in "${SCENARIOS[@]}"; do
    read -r d l b q <<<"${SCENARIO[$s]}"
    printf '\n%s: %s ms one way (%s ms RTT), %s %% loss each way%s\n' "$s" "$d" "$((2 * d))" "$l" \
      "$( ((b > 0)) && echo ", bottleneck $b Mbit/s with a $q ms queue")"
    printf '%-26s' "contender"
    for m in "${METRICS[@]}"; do printf '%10s' "${M_HEAD[$m]}"; done
    _wanted "$REF" && for m in tcp1 tcp8 tcp1r p99; do printf '%10s' "/wg ${M_HEAD[$m]%% *}"; done
    printf '\n'
    for c in "${CONTENDERS[@]}"; do
      printf '%-26s' "$c"
      for m in "${METRICS[@]}"; do
        v=${MED["$s|$c|$m"]}
        # shellcheck disable=SC2059
        if [[ $v == NA ]]; then v="-"; else v=$(printf "${M_FMT[$m]}" "$v"); fi
        printf '%10s' "$v"
      done
      if _wanted "$REF"; then
        for m in tcp1 tcp8 tcp1r p99; do printf '%10s' "$(ratio "${MED["$s|$c|$m"]}" "${MED["$s|$REF|$m"]}")"; done
      fi
      printf '\n'
    done
  done
}

write_results() {  # write_results ROUNDS_DONE
  local n=$1 s c m i row
  for s in "${SCENARIOS[@]}"; do
    for c in "${CONTENDERS[@]}"; do
      for m in "${METRICS[@]}"; do MED["$s|$c|$m"]=$(median_of "$s|$c|$m" "$n"); done
    done
  done
  {
    echo "sctptund WAN benchmark, $(date '+%F %T'), $n of $rounds round(s) done"
    echo "  host: $(uname -r), $(nproc) CPUs; iperf3 runs of $dur s (${dur}+5 s at 50 ms one way or more)"
    echo "  sctptund: $SCTPTUND ($SCTPTUND_REV)"
    for v in "${!VARIANT_INDEX[@]}"; do
      echo "  sctptund@$v: ${VARIANT_BIN[$v]}; [transport] ${VARIANT_TRANSPORT[$v]//$'\n'/; } [[peer]] ${VARIANT_PEER[$v]//$'\n'/; }"
    done
    echo "  wireguard-go-modern: $WIREGUARD_GO ($("$WIREGUARD_GO" --version 2>/dev/null | head -n 1 || echo '?'))"
    echo "  wireguard-go: Debian $(dpkg-query -W -f='${Version}' wireguard-go 2>/dev/null || echo '?'); iperf3 $(dpkg-query -W -f='${Version}' iperf3 2>/dev/null || echo '?'); inner TCP: $(in_ns client sysctl -n net.ipv4.tcp_congestion_control)"
    echo "  direct: the gateways route the LAN prefixes over the delay line: its ceiling in each scenario"
    print_tables
    cat <<EOF

Columns: 1x/8x c>s, 1x s>c = iperf3 TCP goodput in Mbit/s (client->server, server->client; 1 or
8 streams); ping p99 = 99th percentile of pings every 50 ms during the 8-stream transfer, ms;
cpu s/GB = CPU seconds of the tunnel processes of both gateways per GB during that transfer;
retx/MB = the inner TCP's retransmitted segments per MB during it. /wg = value / the value of
wireguard-go-modern (upstream 0.0.20250522) in the same scenario. Medians over the rounds.
EOF
  } >"$report"
  {
    printf 'scenario,contender,metric,unit,better,median,vs_wireguard_go_modern'
    for ((i = 1; i <= n; i++)); do printf ',round%d' "$i"; done
    printf '\n'
    for s in "${SCENARIOS[@]}"; do
      for c in "${CONTENDERS[@]}"; do
        for m in "${METRICS[@]}"; do
          row="$s,$c,${M_CSV[$m]},${M_UNIT[$m]},${M_BETTER[$m]},${MED["$s|$c|$m"]},$(ratio "${MED["$s|$c|$m"]}" "${MED["$s|$REF|$m"]:-NA}")"
          for ((i = 1; i <= n; i++)); do row+=",${SAMPLE["$s|$c|$m|$i"]:-NA}"; done
          echo "$row"
        done
      done
    done
  } >"$csv"
}

# The chart: goodput per contender in each scenario, 1 stream and 8 streams (gnuplot, PNG).
draw_chart() {
  command -v gnuplot >/dev/null || { log "no gnuplot: no chart (apt-get install gnuplot-nox)"; return 0; }
  local dat="$TMPD/chart.dat" s c m cols
  for m in tcp1 tcp8; do
    {
      printf 'scenario'
      for c in "${CONTENDERS[@]}"; do printf ' "%s"' "$c"; done
      printf '\n'
      for s in "${SCENARIOS[@]}"; do
        printf '%s' "$s"
        for c in "${CONTENDERS[@]}"; do v=${MED["$s|$c|$m"]}; printf ' %s' "${v/NA/0}"; done
        printf '\n'
      done
    } >"$TMPD/chart-$m.dat"
  done
  cols=$((${#CONTENDERS[@]} + 1))
  gnuplot <<EOF || log "warning: gnuplot failed; no chart"
set terminal pngcairo size 1400,560 font "sans,10" noenhanced
set output "$png"
set multiplot layout 1,2 title "TCP goodput over a WAN with delay and loss ($(date +%F), $(nproc) CPUs; medians of $rounds round(s))"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel "Mbit/s"
set yrange [0:*]
set grid ytics
set key top right
set xtics rotate by -20
set title "1 TCP stream, client to server"
plot for [i=2:$cols] "$TMPD/chart-tcp1.dat" using i:xtic(1) title columnheader(i)
set title "8 TCP streams, client to server"
plot for [i=2:$cols] "$TMPD/chart-tcp8.dat" using i:xtic(1) title columnheader(i)
unset multiplot
EOF
  [[ -s $png ]] && log "chart: $png"
  rm -f "$dat"
}

# ---- main ---------------------------------------------------------------------------------------

SCTPTUND_REV="git $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
[[ -n $(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null) ]] && SCTPTUND_REV+=" + local changes"
SCTPTUND_REV+=", binary built $(date -r "$SCTPTUND" '+%F %T')"

log "contenders: ${CONTENDERS[*]}; scenarios: ${SCENARIOS[*]}; $rounds round(s) of $dur s runs"
topo_up
wan_delay_up
contenders_setup
start_iperf_server

first=1
for ((r = 1; r <= rounds; r++)); do
  for s in "${SCENARIOS[@]}"; do
    read -r d l b q <<<"${SCENARIO[$s]}"
    wan_delay_set "$d" "$l" "$b" "$q"
    # Fresh tunnels for every scenario: nothing learned on one WAN (windows, loss) carries over.
    if ((!first)); then contenders_stop; contenders_start; fi
    first=0
    secs=$dur
    ((d < 50)) || secs=$((dur + 5))
    for c in "${CONTENDERS[@]}"; do run_contender "$s" "$c" "$r" "$secs"; done
    wan_delay_stats >"$TMPD/delayline-stats.txt"
    log "round $r: $s: delay line: $(tr '\n' ' ' <"$TMPD/delayline-stats.txt")"
  done
  write_results "$r"
done

((chart)) && draw_chart
cat "$report"
elapsed=$(($(date +%s) - t_start))
printf '\nCSV: %s\nreport: %s\n' "$csv" "$report"
[[ -s $png ]] && printf 'chart: %s\n' "$png"
printf 'took %d min %d s\n' $((elapsed / 60)) $((elapsed % 60))
