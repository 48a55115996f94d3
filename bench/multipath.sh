#!/usr/bin/env bash
# Multipath benchmark: sctptund over two WAN paths of their own delay, loss and rate, each path
# alone and both paths together in each multipath mode, side by side in one run, with ratios to
# the better single path.
#
#   client -- gw1 wan0 ==[wan: wa0 | delayline | wb0]== wan0 gw2 -- server    path 0: 192.0.2.0/24
#                 wan1 ==[wan: wa1 | delayline | wb1]== wan1                  path 1: 198.51.100.0/24
#
# Each path has its own delay line (netns-tests/tools/delayline.cpp): one-way delay, random loss
# and a bottleneck rate with a bounded queue, like a real uplink.
#
# Usage: sudo bash bench/multipath.sh [--rounds N] [--seconds S] [--scenarios a,b,...]
#          [--modes a,b,...] [--csv FILE] [--no-deps]
# Modes: path0 (sctptund with path 0 only), path1 (path 1 only), failover (both paths,
# `multipath` unset: one primary, the other on standby), aggregate (both, `multipath =
# "aggregate"`), MODE@NAME=LINES[|BINARY] (both paths with the TOML LINES (';'-separated) added
# to [transport], and the sctptund binary BINARY, e.g. 'failover@fast=failover_ms = 50').
# MULTIPATH_SHOW=1 prints gw1's `sctptund show` after each single-flow run (where the bytes went).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

# name: path 0 "one-way-ms loss-% rate-Mbit queue-ms", path 1 the same
declare -A SCENARIO=(
  [2x100-rtt10]="5 0 100 25 | 5 0 100 25"
  [100+20-rtt10]="5 0 100 25 | 5 0 20 25"
  [rtt10+rtt40]="5 0 100 25 | 20 0 100 25"
  [loss2+clean]="5 2 100 25 | 5 0 100 25"
)
SCENARIOS_DEFAULT=(2x100-rtt10 100+20-rtt10 rtt10+rtt40 loss2+clean)
MODES_DEFAULT=(path0 path1 failover)

usage() {
  sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  cat <<'EOF'
Options:
  --rounds N        rounds, each over every scenario and mode; medians (default 2)
  --seconds S       duration of each iperf3 run (default 10)
  --scenarios LIST  comma-separated subset of: 2x100-rtt10 (two 100 Mbit/s paths, 10 ms RTT
                    each), 100+20-rtt10 (100 and 20 Mbit/s), rtt10+rtt40 (100 Mbit/s each, 10 and
                    40 ms RTT), loss2+clean (path 0 with 2 % loss each way, path 1 clean)
  --modes LIST      comma-separated (default path0,path1,failover); see Modes above
  --csv FILE        CSV output (default bench/results/multipath-<timestamp>.csv, the report beside
                    it as .txt)
  --no-deps         do not run bench/install-bench-deps
Environment: SCTPTUND (default ./build/sctptund), TOOLS_DIR (delayline; default ./build),
  KEEP_TMP=1 (keep the logs).
EOF
}

rounds=2 dur=10 csv="" modes_opt="" scenarios_opt="" no_deps=0
while (($#)); do
  case $1 in
    --rounds) rounds=${2:?--rounds needs a number}; shift 2 ;;
    --seconds) dur=${2:?--seconds needs a number}; shift 2 ;;
    --scenarios) scenarios_opt=${2:?--scenarios needs a list}; shift 2 ;;
    --modes) modes_opt=${2:?--modes needs a list}; shift 2 ;;
    --csv) csv=${2:?--csv needs a file name}; shift 2 ;;
    --no-deps) no_deps=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "multipath.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in rounds dur; do
  if ! [[ ${!v} =~ ^[0-9]+$ ]] || ((${!v} < 1)); then echo "multipath.sh: $v must be a positive integer" >&2; exit 2; fi
done
((rounds <= 20 && dur <= 300)) || { echo "multipath.sh: limits: rounds <= 20, seconds <= 300" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "multipath.sh: run it as root: it creates network namespaces" >&2; exit 1; }

t_start=$(date +%s)
[[ -n $csv ]] || csv="$here/results/multipath-$(date +%Y%m%d-%H%M%S).csv"
mkdir -p "$(dirname "$csv")"
csv=$(cd "$(dirname "$csv")" && pwd)/$(basename "$csv")
report="${csv%.csv}.txt"

((no_deps)) || bash "$here/install-bench-deps"
export SCTPTUND=${SCTPTUND:-$repo/build/sctptund} TOOLS_DIR=${TOOLS_DIR:-$repo/build}
[[ -x $SCTPTUND && -x $TOOLS_DIR/delayline ]] ||
  { echo "multipath.sh: build first (bash packaging/dev.sh build): $SCTPTUND or $TOOLS_DIR/delayline missing" >&2; exit 1; }

ROUTING=tunnel
export ROUTING
# shellcheck source=../netns-tests/lib.sh
source "$repo/netns-tests/lib.sh"
# shellcheck source=lib_measure.sh
source "$here/lib_measure.sh"
need_cmds iperf3 nft ethtool jq awk sort
need_tool delayline

MODES=()
if [[ -n $modes_opt ]]; then IFS=, read -r -a MODES <<<"$modes_opt"; else MODES=("${MODES_DEFAULT[@]}"); fi
declare -A MODE_LINES=() MODE_BIN=()
for m in "${MODES[@]}"; do
  case $m in
    path0 | path1 | failover) ;;
    aggregate) MODE_LINES[$m]='multipath = "aggregate"' ;;
    *@*=*)
      IFS='|' read -r lines bin <<<"${m#*=}"
      MODE_LINES[$m]=${lines//;/$'\n'}
      if [[ -n $bin ]]; then
        [[ -x $bin ]] || fail "mode $m: $bin is not an executable"
        MODE_BIN[$m]=$bin
      fi
      ;;
    *) fail "unknown mode '$m' (path0, path1, failover, aggregate, MODE@NAME=LINES)" ;;
  esac
done
SCENARIOS=()
if [[ -n $scenarios_opt ]]; then IFS=, read -r -a SCENARIOS <<<"$scenarios_opt"; else SCENARIOS=("${SCENARIOS_DEFAULT[@]}"); fi
for s in "${SCENARIOS[@]}"; do [[ -n ${SCENARIO[$s]:-} ]] || fail "unknown scenario '$s' (known: ${!SCENARIO[*]})"; done

# ---- two delay-lined WAN paths ------------------------------------------------------------------

declare -A DL_PID=()
paths_up() {
  local p r
  ns_add wan
  _sysctl wan net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  in_ns gw1 ip link del wan0
  for p in 0 1; do
    ip -n "${PFX}gw1" link add "wan$p" type veth peer name "wa$p" netns "${PFX}wan"
    ip -n "${PFX}gw2" link add "wan$p" type veth peer name "wb$p" netns "${PFX}wan"
  done
  _addr gw1 wan0 192.0.2.1/24
  _addr gw2 wan0 192.0.2.2/24
  _addr gw1 wan1 198.51.100.1/24
  _addr gw2 wan1 198.51.100.2/24
  for r in gw1:wan0 gw2:wan0 gw1:wan1 gw2:wan1 wan:wa0 wan:wb0 wan:wa1 wan:wb1; do
    in_ns "${r%%:*}" ip link set "${r#*:}" up
    in_ns "${r%%:*}" ethtool -K "${r#*:}" tx off tso off gso off gro off >/dev/null 2>&1 ||
      fail "ethtool -K ${r#*:} tx off tso off gso off gro off failed in ${r%%:*}"
    in_ns "${r%%:*}" ethtool -K "${r#*:}" tx-udp-segmentation off >/dev/null 2>&1 || true
  done
  for r in gw1:wan0 gw2:wan0 gw1:wan1 gw2:wan1 wan:wa0 wan:wb0 wan:wa1 wan:wb1; do link_wait_up "${r%%:*}" "${r#*:}"; done
  log "two WAN paths through delay lines in ${PFX}wan: wan0 -- wa0 | delayline | wb0 -- wan0, wan1 -- wa1 | delayline | wb1 -- wan1"
}

# path_set P "MS LOSS RATE QUEUE": (re)start path P's delay line.
path_set() {
  local p=$1 ms loss rate queue i logf="$TMPD/delayline$1.log" lines=0
  read -r ms loss rate queue <<<"$2"
  path_stop "$p" >/dev/null
  [[ -f $logf ]] && lines=$(wc -l <"$logf")
  bg_ns wan "$logf" "$TOOLS_DIR/delayline" --a "wa$p" --b "wb$p" --delay-ms "$ms" --loss "$loss" \
    --rate-mbit "$rate" --queue-ms "$queue" --seed "$RANDOM" --timeout 7200
  DL_PID[$p]=$BG_PID
  for ((i = 0; i < 50; i++)); do
    tail -n +"$((lines + 1))" "$logf" 2>/dev/null | grep -q "^delayline: wa$p <-> wb$p" && return 0
    kill -0 "${DL_PID[$p]}" 2>/dev/null || fail "delayline of path $p exited: $(tail -n 3 "$logf")"
    sleep 0.05
  done
  fail "delayline of path $p did not start within 2.5 s"
}

# path_stop P: stop path P's delay line; prints its counters.
path_stop() {
  local p=$1 before
  [[ -n ${DL_PID[$p]:-} ]] || return 0
  before=$(wc -l <"$TMPD/delayline$p.log")
  stop_pid "${DL_PID[$p]}"
  DL_PID[$p]=""
  tail -n +"$((before + 1))" "$TMPD/delayline$p.log" | grep '^delayline [ab]*:' || true
}

# ---- sctptund in each mode ----------------------------------------------------------------------

# mode_configs MODE: gw1's and gw2's configs for MODE (paths and [transport] lines).
mode_configs() {
  local mode=$1 n me other lines=${MODE_LINES[$1]:-} locals remotes
  write_configs
  for n in 1 2; do
    if [[ $n == 1 ]]; then me=1 other=2; else me=2 other=1; fi
    case $mode in
      path0) locals="\"192.0.2.$me\"" remotes="\"192.0.2.$other\"" ;;
      path1) locals="\"198.51.100.$me\"" remotes="\"198.51.100.$other\"" ;;
      *) locals="\"192.0.2.$me\", \"198.51.100.$me\"" remotes="\"192.0.2.$other\", \"198.51.100.$other\"" ;;
    esac
    awk -v l="local = [$locals]" -v r="remote = [$remotes]" -v extra="$lines" '
      /^local = / { print l; next }
      /^remote = / { print r; next }
      { print }
      /^kind = / && extra != "" { print extra }' "$(_gw_cfg "$n")" >"$TMPD/cfg.tmp"
    mv "$TMPD/cfg.tmp" "$(_gw_cfg "$n")"
    "$SCTPTUND" --check -c "$(_gw_cfg "$n")" >"$TMPD/check$n.log" 2>&1 ||
      fail "mode $mode: sctptund --check rejected gw$n's config: $(cat "$TMPD/check$n.log")"
  done
}

declare -A SAMPLE=() MED=()
METRICS=(tcp1 tcp8)

run_mode() {  # run_mode SCENARIO MODE ROUND
  local s=$1 m=$2 r=$3 k SCTPTUND=${MODE_BIN[$2]:-$SCTPTUND}
  for k in "${METRICS[@]}"; do SAMPLE["$s|$m|$k|$r"]=NA; done
  mode_configs "$m"
  start_gw 1
  start_gw 2
  if wait_path; then
    run_iperf 2 $((dur + 30)) -t "$dur" -P 1 && SAMPLE["$s|$m|tcp1|$r"]=$(iperf_mbps)
    if ((${MULTIPATH_SHOW:-0})); then gw_show 1 | sed "s/^/[$m after 1x] /" || true; fi
    run_iperf 2 $((dur + 30)) -t "$dur" -P 8 && SAMPLE["$s|$m|tcp8|$r"]=$(iperf_mbps)
  else
    log "warning: round $r: $s: $m: client cannot ping server; no figures"
  fi
  stop_gw 1
  stop_gw 2
  log "round $r: $s: $m: 1x=${SAMPLE["$s|$m|tcp1|$r"]} 8x=${SAMPLE["$s|$m|tcp8|$r"]} Mbit/s"
}

# The better single path of a scenario and metric (path0/path1 medians), or NA.
best_single() {
  local s=$1 k=$2 a=${MED["$1|path0|$2"]:-NA} b=${MED["$1|path1|$2"]:-NA}
  if [[ $a == NA ]]; then echo "$b"; elif [[ $b == NA ]]; then echo "$a"
  else awk -v a="$a" -v b="$b" 'BEGIN {print (a > b ? a : b)}'; fi
}

write_results() {  # write_results ROUNDS_DONE
  local n=$1 s m k i row best
  for s in "${SCENARIOS[@]}"; do
    for m in "${MODES[@]}"; do
      for k in "${METRICS[@]}"; do MED["$s|$m|$k"]=$(median_of "$s|$m|$k" "$n"); done
    done
  done
  {
    echo "sctptund multipath benchmark, $(date '+%F %T'), $n of $rounds round(s) done"
    echo "  host: $(uname -r), $(nproc) CPUs; iperf3 runs of $dur s; sctptund: $SCTPTUND ($SCTPTUND_REV)"
    for m in "${MODES[@]}"; do
      [[ -z ${MODE_LINES[$m]:-}${MODE_BIN[$m]:-} ]] ||
        echo "  ${m%%=*}: [transport] ${MODE_LINES[$m]//$'\n'/; }; binary ${MODE_BIN[$m]:-$SCTPTUND}"
    done
    for s in "${SCENARIOS[@]}"; do
      IFS='|' read -r p0 p1 <<<"${SCENARIO[$s]}"
      printf '\n%s: path 0 %s; path 1 %s (one-way ms, loss %% each way, Mbit/s, queue ms)\n' "$s" "${p0% }" "${p1# }"
      printf '%-28s%10s%10s%12s%12s\n' mode "1x c>s" "8x c>s" "1x/best" "8x/best"
      for m in "${MODES[@]}"; do
        printf '%-28s' "${m%%=*}"
        for k in "${METRICS[@]}"; do
          v=${MED["$s|$m|$k"]}
          if [[ $v == NA ]]; then printf '%10s' -; else printf '%10.0f' "$v"; fi
        done
        for k in "${METRICS[@]}"; do printf '%12s' "$(ratio "${MED["$s|$m|$k"]}" "$(best_single "$s" "$k")")"; done
        printf '\n'
      done
    done
    cat <<EOF

Columns: iperf3 TCP goodput client->server in Mbit/s, 1 and 8 streams, medians over the rounds;
/best = value / the better of path0 and path1 alone in the same scenario (when both ran).
EOF
  } >"$report"
  {
    printf 'scenario,mode,metric,unit,median,vs_best_single_path'
    for ((i = 1; i <= n; i++)); do printf ',round%d' "$i"; done
    printf '\n'
    for s in "${SCENARIOS[@]}"; do
      for m in "${MODES[@]}"; do
        for k in "${METRICS[@]}"; do
          best=$(best_single "$s" "$k")
          row="$s,${m%%=*},$k,Mbit/s,${MED["$s|$m|$k"]},$(ratio "${MED["$s|$m|$k"]}" "$best")"
          for ((i = 1; i <= n; i++)); do row+=",${SAMPLE["$s|$m|$k|$i"]:-NA}"; done
          echo "$row"
        done
      done
    done
  } >"$csv"
}

# ---- main ---------------------------------------------------------------------------------------

SCTPTUND_REV="git $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
[[ -n $(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null) ]] && SCTPTUND_REV+=" + local changes"

log "modes: ${MODES[*]}; scenarios: ${SCENARIOS[*]}; $rounds round(s) of $dur s runs"
topo_up
paths_up
start_iperf_server
for ((r = 1; r <= rounds; r++)); do
  for s in "${SCENARIOS[@]}"; do
    IFS='|' read -r p0 p1 <<<"${SCENARIO[$s]}"
    path_set 0 "$p0"
    path_set 1 "$p1"
    for m in "${MODES[@]}"; do run_mode "$s" "$m" "$r"; done
    log "round $r: $s: path 0: $(path_stop 0 | tr '\n' ' ')"
    log "round $r: $s: path 1: $(path_stop 1 | tr '\n' ' ')"
  done
  write_results "$r"
done
cat "$report"
elapsed=$(($(date +%s) - t_start))
printf '\nCSV: %s\nreport: %s\ntook %d min %d s\n' "$csv" "$report" $((elapsed / 60)) $((elapsed % 60))
