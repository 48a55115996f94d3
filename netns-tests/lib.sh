# shellcheck shell=bash
# lib.sh: shared harness for the sctptund network-namespace tests. Source it; do not run it.
#
#   client ----------- gw1 ============ WAN ============ gw2 ----------- server
#   eth0 10.1.0.2/24   lan0 10.1.0.1/24                 lan0 10.2.0.1/24   eth0 10.2.0.2/24
#        fd01::2/64         fd01::1/64                       fd02::1/64         fd02::2/64
#                      wan0 192.0.2.1/24 <--veth--> wan0 192.0.2.2/24
#                      tun0 10.255.0.1/30           tun0 10.255.0.2/30   (created by sctptund)
#                           fd00:255::1/64               fd00:255::2/64
#
# ROUTING=tunnel (default): gw1 routes 10.2.0.0/16 + fd02::/64 into its tun0, gw2 routes
#   10.1.0.0/16 + fd01::/64 into its tun0; the daemons carry the packets as SCTP over UDP 9899.
# ROUTING=direct: no daemon; the gateways route the LAN prefixes straight over the WAN veth
#   (IPv6 via the link-local next hops fe80::1 / fe80::2 on wan0). Harness self-check, benchmarks.
#
# Environment: SCTPTUND (daemon binary; default <repo>/build/sctptund), TOOLS_DIR (where xfer is;
# default <repo>/build), LOG_LEVEL (daemon --log-level, default info), KEEP_TMP=1 (keep the temp dir).
#
# Variables for tests: TMPD (per-run temp dir), PFX (namespace prefix "st<PID>-"), PORT (9899),
# GW_PID[N] / GW_START_MS[N] (gwN's daemon PID / launch time in ms), BG_PID (set by bg_ns).
# Functions (internal helpers start with an underscore):
#   need_cmds CMD...        fail unless each command is on PATH
#   need_tool NAME          fail unless $TOOLS_DIR/NAME is executable
#   ns ROLE                 namespace name of ROLE (client|gw1|gw2|server) for this run
#   in_ns ROLE CMD...       run CMD inside ROLE's namespace (foreground)
#   bg_ns ROLE LOG CMD...   start CMD in ROLE's namespace in the background, output to LOG; PID in BG_PID
#   stop_pid PID            TERM (then KILL after 5 s) a process this script started, and reap it
#   wait_pid PID SECS       wait (bounded) for a background process to exit; returns its status
#   wait_listen ROLE PORT   wait (bounded, 5 s) until a TCP listener on PORT exists in ROLE
#   ns_add ROLE...          create more namespaces (deleted on exit): lo up, no rp_filter, no DAD
#   xfer_start PORT BYTES SECS  start tools/xfer: a server in server, a client in client sending
#                           BYTES to 10.2.0.2:PORT (each way, verified); PIDs in XFER_PIDS
#   xfer_wait WHAT          wait for both (bounded by their SECS); fail "xfer ... WHAT" with the logs
#   topo_up                 create the four namespaces, veths, addresses, LAN routes (+ WAN routes if direct)
#   write_configs           write $TMPD/gw1.toml and gw2.toml and validate them with `sctptund --check`
#   write_config N          (re)write gwN's config only; GW_EXTRA[N] is appended to it
#   inet_up                 add an "internet" namespace behind gw1's uplink up0 (gw1's default routes
#                           go there); it holds the hosts 198.51.100.7 and 2001:db8:7::7
#   start_gw N              start sctptund in gwN (log: $TMPD/gwN.log), wait for tun0, add the routes
#   stop_gw N / kill9_gw N  stop gwN's daemon with SIGTERM / SIGKILL, reap it, wait for tun0 to vanish
#   gw_show N [ARGS]        run `sctptund show -c CONFIG ARGS` in gwN
#   gw_counter N KEY        sum of the integer values of JSON key KEY in `show --json` of gwN
#   tun_stat N STAT         kernel counter of gwN's tun0 (e.g. tx_packets: packets routed into it)
#   nft_watch N             install nftables counters on gwN: wan_udp (UDP to port 9899 leaving
#                           wan0 from the gateway itself; a UDP GSO send counts once), wan_fwd
#                           (forwarded packets leaving wan0), wan_udp_in (UDP to 9899 arriving on
#                           wan0, before reassembly) and wan_frag_in (IPv4 fragments arriving)
#   nft_count N NAME        packet count of one of those counters (nft_bytes: byte count)
#   wait_tunnel [SECS]      ping client->server over IPv4 and IPv6 until both answer (default 10 s)
#   nc_transfer SRC DST ADDR PORT FILE   send FILE with nc from SRC to a listener on DST/ADDR:PORT
#                           and compare SHA-256 of both sides
#   now_ms                  monotonic-enough wall clock in milliseconds
#   fail MSG                print MSG and the tails of all logs, exit 1
#   log MSG                 print a progress line

set -euo pipefail
set -E

_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$_LIB_DIR/.." && pwd)
ROUTING=${ROUTING:-tunnel}
SCTPTUND=${SCTPTUND:-$REPO_ROOT/build/sctptund}
TOOLS_DIR=${TOOLS_DIR:-$REPO_ROOT/build}
LOG_LEVEL=${LOG_LEVEL:-info}
PORT=9899
PFX="st$$-"
TMPD=""
_PIDS=()        # background processes this script started (killed by the cleanup trap)
_NAMESPACES=()  # namespaces this script created (deleted by the cleanup trap)
declare -A GW_PID=() GW_START_MS=()  # GW_START_MS: when each gateway's daemon was launched (now_ms)

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }

_dump_logs() {
  [[ -n $TMPD && -d $TMPD ]] || return 0
  local f
  for f in "$TMPD"/*.log; do
    [[ -s $f ]] || continue
    echo "----- last 25 lines of $(basename "$f") -----" >&2
    tail -n 25 "$f" >&2
  done
}

fail() {
  echo "FAIL: $*" >&2
  _dump_logs
  exit 1
}

_on_err() {
  local rc=$? line=$1 cmd=$2
  [[ $BASHPID == "$$" ]] || return 0   # only report in the main shell, not in $(...) subshells
  echo "FAIL: command exited with status $rc at ${BASH_SOURCE[1]:-?}:$line: $cmd" >&2
  local i
  for ((i = 1; i < ${#FUNCNAME[@]}; i++)); do
    echo "  called from ${FUNCNAME[$i]} at ${BASH_SOURCE[$i + 1]:-?}:${BASH_LINENO[$i]}" >&2
  done
  _dump_logs
  exit 1
}

_is_our_child() {  # guards against killing a recycled PID
  local ppid
  ppid=$(awk '/^PPid:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
  [[ $ppid == "$$" ]]
}

_forget_pid() {
  local p keep=()
  for p in "${_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  _PIDS=("${keep[@]}")
}

_cleanup() {
  local rc=$? p n i
  set +e
  trap - ERR
  for p in "${_PIDS[@]}"; do _is_our_child "$p" && kill -TERM "$p" 2>/dev/null; done
  for p in "${_PIDS[@]}"; do
    for ((i = 0; i < 30; i++)); do
      if _is_our_child "$p" && kill -0 "$p" 2>/dev/null; then sleep 0.1; else break; fi
    done
    if _is_our_child "$p"; then kill -KILL "$p" 2>/dev/null; fi
    wait "$p" 2>/dev/null
  done
  for n in "${_NAMESPACES[@]}"; do ip netns del "$n" 2>/dev/null || echo "warning: could not delete netns $n" >&2; done
  # A sanitizer build (SCTPTUND_SANITIZE) reports into the daemon logs: any report fails the test,
  # whatever else happened (leaks are reported only at exit, after the test's own checks).
  if [[ -n $TMPD && -d $TMPD ]] &&
    grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$TMPD"/*.log >/dev/null 2>&1; then
    for p in $(grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$TMPD"/*.log); do
      echo "FAIL: sanitizer report in $(basename "$p"):" >&2
      grep -A30 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$p" | head -60 >&2
    done
    ((rc != 0)) || rc=1
  fi
  if [[ -n $TMPD && -d $TMPD ]]; then
    if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "kept temp dir $TMPD" >&2; else rm -rf -- "$TMPD"; fi
  fi
  exit "$rc"
}

need_cmds() {
  local c
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || fail "required command '$c' not found on PATH"; done
}

need_tool() {
  [[ -x $TOOLS_DIR/$1 ]] || fail "tool $TOOLS_DIR/$1 not found (build it; set TOOLS_DIR to the build dir)"
}

now_ms() { local t=${EPOCHREALTIME//[!0-9]/}; echo $((t / 1000)); }

ns() { echo "${PFX}$1"; }
in_ns() { local role=$1; shift; ip netns exec "${PFX}$role" "$@"; }

# Starts "$@" in ROLE's namespace without an intermediate subshell, so BG_PID is the process itself.
bg_ns() {
  local role=$1 out=$2; shift 2
  ip netns exec "${PFX}$role" "$@" >>"$out" 2>&1 &
  BG_PID=$!
  _PIDS+=("$BG_PID")
}

wait_pid() {
  local pid=$1 secs=$2 i rc=0
  for ((i = 0; i < secs * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then stop_pid "$pid"; return 124; fi
  wait "$pid" || rc=$?
  _forget_pid "$pid"
  return "$rc"
}

stop_pid() {
  local pid=$1 i
  if _is_our_child "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  wait "$pid" 2>/dev/null || true
  _forget_pid "$pid"
}

wait_listen() {
  local role=$1 port=$2 i
  for ((i = 0; i < 50; i++)); do
    [[ -n $(in_ns "$role" ss -Hltn "sport = :$port") ]] && return 0
    sleep 0.1
  done
  fail "no TCP listener on port $port in $role after 5 s"
}

# ---- topology ---------------------------------------------------------------------------------

_sysctl() { local role=$1; shift; in_ns "$role" sysctl -qw "$@" >/dev/null; }

_addr() {  # _addr ROLE DEV ADDR...
  local role=$1 dev=$2 a; shift 2
  for a in "$@"; do
    if [[ $a == *:* ]]; then in_ns "$role" ip -6 addr add "$a" dev "$dev" nodad
    else in_ns "$role" ip addr add "$a" dev "$dev"; fi
  done
  in_ns "$role" ip link set "$dev" up
}

ns_add() {
  local r
  for r in "$@"; do
    ip netns add "${PFX}$r"
    _NAMESPACES+=("${PFX}$r")
    in_ns "$r" ip link set lo up
    # Before any veth exists, so every interface inherits it: v6 addresses usable at once.
    _sysctl "$r" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
      net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  done
}

topo_up() {
  local r
  ns_add client gw1 gw2 server
  for r in gw1 gw2; do
    _sysctl "$r" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  done
  ip -n "${PFX}client" link add eth0 type veth peer name lan0 netns "${PFX}gw1"
  ip -n "${PFX}gw1" link add wan0 type veth peer name wan0 netns "${PFX}gw2"
  ip -n "${PFX}gw2" link add lan0 type veth peer name eth0 netns "${PFX}server"

  _addr client eth0 10.1.0.2/24 fd01::2/64
  _addr gw1 lan0 10.1.0.1/24 fd01::1/64
  _addr gw1 wan0 192.0.2.1/24
  _addr gw2 wan0 192.0.2.2/24
  _addr gw2 lan0 10.2.0.1/24 fd02::1/64
  _addr server eth0 10.2.0.2/24 fd02::2/64
  # A veth's queue drops everything until the kernel's link watcher has seen its carrier (up to
  # ~1 s after "link set up"); wait for that so the first packets of a test are not lost.
  local link i
  for link in client:eth0 gw1:lan0 gw1:wan0 gw2:wan0 gw2:lan0 server:eth0; do
    for ((i = 0; i < 50; i++)); do
      [[ $(ip -n "${PFX}${link%%:*}" -br link show dev "${link#*:}" | awk '{print $2}') == UP ]] && break
      sleep 0.1
    done
    [[ $(ip -n "${PFX}${link%%:*}" -br link show dev "${link#*:}" | awk '{print $2}') == UP ]] ||
      fail "link ${link#*:} in ${link%%:*} not operationally up after 5 s"
  done
  in_ns client ip route add default via 10.1.0.1
  in_ns client ip -6 route add default via fd01::1
  in_ns server ip route add default via 10.2.0.1
  in_ns server ip -6 route add default via fd02::1

  case $ROUTING in
    direct)
      _addr gw1 wan0 fe80::1/64
      _addr gw2 wan0 fe80::2/64
      in_ns gw1 ip route add 10.2.0.0/16 via 192.0.2.2 dev wan0
      in_ns gw1 ip -6 route add fd02::/64 via fe80::2 dev wan0
      in_ns gw2 ip route add 10.1.0.0/16 via 192.0.2.1 dev wan0
      in_ns gw2 ip -6 route add fd01::/64 via fe80::1 dev wan0
      ;;
    tunnel) ;;  # routes into tun0 are added by start_gw once the daemon has created it
    *) fail "ROUTING must be 'tunnel' or 'direct', not '$ROUTING'" ;;
  esac
  log "topology up ($ROUTING routing), namespaces ${PFX}{client,gw1,gw2,server}"
}

inet_up() {
  ns_add inet
  ip -n "${PFX}gw1" link add up0 type veth peer name eth0 netns "${PFX}inet"
  _addr gw1 up0 203.0.113.1/24 2001:db8:1::1/64
  _addr inet eth0 203.0.113.2/24 2001:db8:1::2/64
  in_ns inet ip addr add 198.51.100.7/32 dev lo
  in_ns inet ip addr add 2001:db8:7::7/128 dev lo nodad
  local i
  for ((i = 0; i < 50; i++)); do
    [[ $(ip -n "${PFX}gw1" -br link show dev up0 | awk '{print $2}') == UP ]] && break
    sleep 0.1
  done
  in_ns gw1 ip route add default via 203.0.113.2 dev up0
  in_ns gw1 ip -6 route add default via 2001:db8:1::2 dev up0
  in_ns inet ip route add 10.1.0.0/16 via 203.0.113.1
  in_ns inet ip -6 route add fd01::/64 via 2001:db8:1::1
  log "internet namespace ${PFX}inet up behind gw1's uplink up0 (hosts 198.51.100.7, 2001:db8:7::7)"
}

# ---- daemon -----------------------------------------------------------------------------------

_gw_cfg() { echo "$TMPD/gw$1.toml"; }

# GW_EXTRA[N]: TOML appended to gwN's config by write_config ([[policy]] / [[route]] tables).
declare -A GW_EXTRA=()
# PEER_SECURITY[N]: the security keys of gwN's [[peer]] (default: the run's shared key, sealed).
declare -A PEER_SECURITY=()
# TRANSPORT_KIND[N]: gwN's [transport] kind (default udp); KERNEL_UDP[N]=1: udp_encapsulation = true
# (kind = "kernel" only). The kernel kinds need a kernel with SCTP (netns-tests/vm/).
declare -A TRANSPORT_KIND=() KERNEL_UDP=()
# TRANSPORTS="KIND1 KIND2" (environment) sets both: udp, kernel, kernel-udp (kernel with UDP
# encapsulation) or auto; e.g. TRANSPORTS="kernel-udp udp" for the interop scenario.
if [[ -n ${TRANSPORTS:-} ]]; then
  read -r -a _kinds <<<"$TRANSPORTS"
  ((${#_kinds[@]} == 2)) || { echo "lib.sh: TRANSPORTS must name two kinds, not '$TRANSPORTS'" >&2; exit 2; }
  for _n in 1 2; do
    case ${_kinds[_n - 1]} in
      kernel-udp) TRANSPORT_KIND[$_n]=kernel KERNEL_UDP[$_n]=1 ;;
      udp | kernel | auto) TRANSPORT_KIND[$_n]=${_kinds[_n - 1]} ;;
      *) echo "lib.sh: unknown transport kind '${_kinds[_n - 1]}' in TRANSPORTS" >&2; exit 2 ;;
    esac
  done
fi

# The run's pre-shared key file (made once with `sctptund genkey`, mode 0600); prints its path.
# psk_file NAME makes another one (a wrong key for a test).
psk_file() {
  local f="$TMPD/${1:-psk}.key"
  if [[ ! -s $f ]]; then
    (umask 077 && "$SCTPTUND" genkey >"$f") || fail "'$SCTPTUND genkey' failed"
  fi
  echo "$f"
}

write_configs() {
  local n
  for n in 1 2; do write_config "$n"; done
}

write_config() {
  local n=$1 me other peer tun_addr tun6 their_v4 their_v6 security
  {
    if [[ $n == 1 ]]; then
      me=192.0.2.1 other=192.0.2.2 peer=site-b tun_addr=10.255.0.1/30 tun6=fd00:255::1/64
      their_v4=10.2.0.0/16 their_v6=fd02::/64
    else
      me=192.0.2.2 other=192.0.2.1 peer=site-a tun_addr=10.255.0.2/30 tun6=fd00:255::2/64
      their_v4=10.1.0.0/16 their_v6=fd01::/64
    fi
    security=${PEER_SECURITY[$n]:-}
    [[ -n $security ]] || security="key_file = \"$(psk_file)\""
    cat >"$(_gw_cfg "$n")" <<EOF
# gw$n of the netns test topology (generated by netns-tests/lib.sh)
[tun]
name = "tun0"
mtu = 1400
addresses = ["$tun_addr", "$tun6"]

[transport]
kind = "${TRANSPORT_KIND[$n]:-udp}"
$( ((${KERNEL_UDP[$n]:-0})) && echo "udp_encapsulation = true")
local = ["$me"]
port = $PORT

[control]
socket = "$TMPD/gw$n.sock"

[[peer]]
name = "$peer"
remote = ["$other"]
port = $PORT
$security

[[policy]]
prefix = "$their_v4"
action = "tunnel"
peer = "$peer"

[[policy]]
prefix = "$their_v6"
action = "tunnel"
peer = "$peer"
EOF
    printf '%s\n' "${GW_EXTRA[$n]:-}" >>"$(_gw_cfg "$n")"
    "$SCTPTUND" --check -c "$(_gw_cfg "$n")" >"$TMPD/check$n.log" 2>&1 ||
      fail "'$SCTPTUND --check -c $(_gw_cfg "$n")' rejected the generated config"
  }
}

_tun_up() { in_ns "gw$1" ip -o link show dev tun0 2>/dev/null | grep -Eq '[<,]UP[,>]'; }
_tun_exists() { in_ns "gw$1" ip link show dev tun0 >/dev/null 2>&1; }

start_gw() {
  local n=$1 i logf="$TMPD/gw$1.log" pid
  [[ $ROUTING == tunnel ]] || fail "start_gw called with ROUTING=$ROUTING"
  [[ -z ${GW_PID[$n]:-} ]] || fail "start_gw $n: daemon already running (pid ${GW_PID[$n]})"
  echo "===== $(date +%T.%N) starting gw$n: $SCTPTUND -c $(_gw_cfg "$n") --log-level $LOG_LEVEL" >>"$logf"
  # shellcheck disable=SC2034  # read by the tests (recovery time)
  GW_START_MS[$n]=$(now_ms)
  bg_ns "gw$n" "$logf" "$SCTPTUND" -c "$(_gw_cfg "$n")" --log-level "$LOG_LEVEL"
  pid=$BG_PID
  GW_PID[$n]=$pid
  for ((i = 0; i < 100; i++)); do
    _tun_up "$n" && break
    if ! kill -0 "$pid" 2>/dev/null; then
      local rc=0; wait "$pid" || rc=$?
      _forget_pid "$pid"; unset 'GW_PID[$n]'
      fail "sctptund in gw$n exited (status $rc) before bringing up tun0"
    fi
    sleep 0.1
  done
  _tun_up "$n" || fail "sctptund in gw$n: tun0 not up after 10 s"
  if [[ $n == 1 ]]; then
    in_ns gw1 ip route replace 10.2.0.0/16 dev tun0
    in_ns gw1 ip -6 route replace fd02::/64 dev tun0
  else
    in_ns gw2 ip route replace 10.1.0.0/16 dev tun0
    in_ns gw2 ip -6 route replace fd01::/64 dev tun0
  fi
  log "gw$n: sctptund running (pid $pid), tun0 up, routes added"
}

_stop_gw() {
  local n=$1 sig=$2 pid=${GW_PID[$1]:-} i
  [[ -n $pid ]] || fail "gw$n: no daemon running"
  echo "===== $(date +%T.%N) sending SIG$sig to gw$n (pid $pid)" >>"$TMPD/gw$n.log"
  disown "$pid" 2>/dev/null || true  # no "Killed" job notice from bash; exit is awaited below
  kill "-$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    echo "warning: gw$n did not exit within 5 s of SIG$sig; killed it" >&2
  fi
  _forget_pid "$pid"
  unset 'GW_PID[$n]'
  for ((i = 0; i < 50; i++)); do _tun_exists "$n" || break; sleep 0.1; done
  ! _tun_exists "$n" || fail "gw$n: tun0 still exists 5 s after the daemon exited"
  log "gw$n: daemon stopped (SIG$sig), tun0 gone"
}
stop_gw() { _stop_gw "$1" TERM; }
kill9_gw() { _stop_gw "$1" KILL; }

gw_show() { local n=$1; shift; in_ns "gw$n" timeout 10 "$SCTPTUND" show -c "$(_gw_cfg "$n")" "$@"; }

gw_json() { gw_show "$1" --json || fail "'sctptund show --json' failed in gw$1"; }
# jnum JSON KEY: the integer value of KEY's first occurrence in JSON (fails the test if absent).
jnum() {
  local v
  v=$(grep -oE "\"$2\"[[:space:]]*:[[:space:]]*[0-9]+" <<<"$1" | head -n 1 | grep -oE '[0-9]+$' || true)
  [[ -n $v ]] || fail "no integer \"$2\" in 'sctptund show --json' (has the layout changed?): $(head -c 800 <<<"$1")"
  echo "$v"
}

# The one place that knows how counters look in `sctptund show --json`: sums every
# "KEY": <integer> occurrence (one per peer / association). Returns 1 if KEY is absent.
gw_counter() {
  local n=$1 key=$2 json vals v sum=0
  json=$(gw_show "$n" --json 2>&1) || { echo "gw_counter: 'sctptund show --json' failed in gw$n: $json" >&2; return 1; }
  vals=$(grep -oE "\"$key\"[[:space:]]*:[[:space:]]*[0-9]+" <<<"$json" | sed -E 's/.*:[[:space:]]*//' || true)
  if [[ -z $vals ]]; then
    echo "gw_counter: no integer key \"$key\" in 'sctptund show --json' of gw$n; output was:" >&2
    head -c 4000 <<<"$json" >&2
    return 1
  fi
  for v in $vals; do sum=$((sum + v)); done
  echo "$sum"
}

tun_stat() { in_ns "gw$1" cat "/sys/class/net/tun0/statistics/$2"; }

nft_watch() {
  in_ns "gw$1" nft -f - <<EOF
table inet sttest {
  counter wan_udp {}
  counter wan_fwd {}
  counter wan_udp_in {}
  counter wan_frag_in {}
  chain to_wan { type filter hook output priority 0; policy accept; oifname "wan0" udp dport $PORT counter name "wan_udp"; }
  chain fwd_wan { type filter hook forward priority 0; policy accept; oifname "wan0" counter name "wan_fwd"; }
  chain from_wan {
    type filter hook prerouting priority -500; policy accept;
    iifname "wan0" udp dport $PORT counter name "wan_udp_in"
    iifname "wan0" ip frag-off & 0x3fff != 0 counter name "wan_frag_in"
  }
}
EOF
}

nft_count() {
  in_ns "gw$1" nft list counter inet sttest "$2" | grep -oE 'packets [0-9]+' | awk '{print $2}'
}

nft_bytes() {
  in_ns "gw$1" nft list counter inet sttest "$2" | grep -oE 'bytes [0-9]+' | awk '{print $2}'
}

wait_tunnel() {
  local secs=${1:-10} start i v4=0 v6=0
  start=$(now_ms)
  for ((i = 0; i < secs * 4; i++)); do
    (($(now_ms) - start < secs * 1000)) || break
    ((v4)) || { in_ns client ping -c 1 -W 1 -q 10.2.0.2 >/dev/null 2>&1 && v4=1; }
    ((v6)) || { in_ns client ping -6 -c 1 -W 1 -q fd02::2 >/dev/null 2>&1 && v6=1; }
    if ((v4 && v6)); then log "path client->server works (IPv4+IPv6) after $(($(now_ms) - start)) ms"; return 0; fi
    sleep 0.2
  done
  fail "client cannot ping server within ${secs} s (IPv4 ok=$v4, IPv6 ok=$v6; ROUTING=$ROUTING)"
}

XFER_PIDS=()
xfer_start() {
  local port=$1 bytes=$2 secs=$3
  bg_ns server "$TMPD/xfer-server-$port.log" "$TOOLS_DIR/xfer" server --port "$port" --count 1 --timeout "$secs"
  XFER_PIDS=("$BG_PID")
  wait_listen server "$port"
  bg_ns client "$TMPD/xfer-client-$port.log" "$TOOLS_DIR/xfer" client --host 10.2.0.2 --port "$port" \
    --bytes "$bytes" --timeout "$secs"
  XFER_PIDS+=("$BG_PID")
  _XFER_PORT=$port _XFER_SECS=$secs
}

xfer_wait() {
  local what=$1
  wait_pid "${XFER_PIDS[1]}" "$((_XFER_SECS + 5))" ||
    fail "xfer client failed $what: $(cat "$TMPD/xfer-client-$_XFER_PORT.log")"
  wait_pid "${XFER_PIDS[0]}" 30 || fail "xfer server failed $what: $(cat "$TMPD/xfer-server-$_XFER_PORT.log")"
}

nc_transfer() {
  local src=$1 dst=$2 addr=$3 port=$4 file=$5 out="$TMPD/received.$$.$4" rc=0 t0 ms size
  size=$(stat -c %s "$file")
  t0=$(now_ms)
  # shellcheck disable=SC2016  # $1..$3 are expanded by sh, not here
  bg_ns "$dst" "$TMPD/nc-listen.log" sh -c 'exec nc -l "$1" "$2" >"$3" </dev/null' _ "$addr" "$port" "$out"
  local lpid=$BG_PID
  wait_listen "$dst" "$port"
  in_ns "$src" timeout 120 nc -N "$addr" "$port" <"$file" || rc=$?
  ((rc == 0)) || { stop_pid "$lpid"; fail "nc sender $src -> [$addr]:$port failed (status $rc)"; }
  wait_pid "$lpid" 30 || fail "nc listener in $dst did not finish cleanly (status $?)"
  ms=$(($(now_ms) - t0))
  local want got
  want=$(sha256sum <"$file" | cut -d' ' -f1)
  got=$(sha256sum <"$out" | cut -d' ' -f1)
  [[ $want == "$got" ]] ||
    fail "SHA-256 mismatch $src -> $dst [$addr]:$port: sent $want ($size bytes), got $got ($(stat -c %s "$out") bytes)"
  rm -f -- "$out"
  log "nc $src -> $dst [$addr]:$port: $size bytes, SHA-256 match ($want), ${ms} ms"
}

# ---- preflight (runs when sourced) -------------------------------------------------------------

trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap '_on_err $LINENO "$BASH_COMMAND"' ERR

[[ $(id -u) == 0 ]] || fail "these tests must run as root (they create network namespaces)"
need_cmds ip ping sysctl ss timeout awk sha256sum
ip netns list >/dev/null 2>&1 || fail "'ip netns' is not usable on this system"
if [[ $ROUTING == tunnel ]]; then
  [[ -n $SCTPTUND && -x $SCTPTUND ]] || fail "SCTPTUND='$SCTPTUND' is not an executable daemon binary (build sctptund first)"
fi
TMPD=$(mktemp -d "/tmp/st$$.XXXXXX")

# ---- second WAN link (multi-path tests) ----------------------------------------------------------
#   wan1_up                 add a second veth pair gw1 wan1 198.51.100.1/24 <-> gw2 wan1 198.51.100.2/24
#   multipath_configs [K=V...]  rewrite both configs with local = [wan0, wan1] and remote = [both of
#                           the peer's], plus the given [transport] keys (probe_interval_ms=50 ...);
#                           validated with `sctptund --check`
#   link_wait_up ROLE DEV   wait (bounded, 5 s) until DEV in ROLE is operationally up
#   path_counters_up [MATCH]  nftables counters of the tunnel's datagrams leaving gw1 on wan0 and
#                           on wan1 (MATCH: which packets; default "udp dport $PORT")
#   measure_paths SECS      bytes gw1 sent on wan0 (D0) and wan1 (D1) during SECS seconds, and how
#                           long the measurement took in ms (MS)
#   wan0_cut [MATCH]        drop the tunnel's datagrams (MATCH; default "udp dport $PORT") on gw1's
#                           wan0, both ways (nftables table stcut); wan0_restore lets them pass again
#   gap_check NAME LOG T_CUT [FROM]  a finished `gapmeter recv` (output in LOG): fail unless the
#                           transfer was byte-exact without a reset; log its gaps relative to T_CUT
#                           (ms); GAP: the longest, in ms (with FROM, epoch ms: the longest of 50 ms
#                           or more that began at FROM or later); fail if it exceeds MAX_GAP_MS

link_wait_up() {
  local role=$1 dev=$2 i
  for ((i = 0; i < 50; i++)); do
    [[ $(ip -n "${PFX}$role" -br link show dev "$dev" | awk '{print $2}') == UP ]] && return 0
    sleep 0.1
  done
  fail "link $dev in $role not operationally up after 5 s"
}

wan1_up() {
  ip -n "${PFX}gw1" link add wan1 type veth peer name wan1 netns "${PFX}gw2"
  _addr gw1 wan1 198.51.100.1/24
  _addr gw2 wan1 198.51.100.2/24
  link_wait_up gw1 wan1
  link_wait_up gw2 wan1
  log "second WAN link wan1 up: gw1 198.51.100.1 <-> gw2 198.51.100.2"
}

path_counters_up() {
  local match=${1:-"udp dport $PORT"}
  in_ns gw1 nft -f - <<EOF || fail "could not install the per-link counters in gw1"
table inet stpath {
  counter w0_out {}
  counter w1_out {}
  chain out {
    type filter hook output priority 10; policy accept;
    oifname "wan0" $match counter name "w0_out"
    oifname "wan1" $match counter name "w1_out"
  }
}
EOF
}

_path_bytes() { in_ns gw1 nft list counter inet stpath "$1" | grep -oE 'bytes [0-9]+' | awk '{print $2}'; }

measure_paths() {
  local a0 a1 t0
  t0=$(now_ms)
  a0=$(_path_bytes w0_out)
  a1=$(_path_bytes w1_out)
  sleep "$1"
  D0=$(($(_path_bytes w0_out) - a0))
  D1=$(($(_path_bytes w1_out) - a1))
  MS=$(($(now_ms) - t0))
}

wan0_cut() {
  local match=${1:-"udp dport $PORT"}
  in_ns gw1 nft -f - <<EOF || fail "could not cut wan0 in gw1"
table inet stcut {
  chain in { type filter hook prerouting priority -400; policy accept; iifname "wan0" $match drop; }
  chain out { type filter hook output priority -400; policy accept; oifname "wan0" $match drop; }
}
EOF
}

wan0_restore() { in_ns gw1 nft delete table inet stcut || fail "could not restore wan0 in gw1"; }

gap_check() {
  local name=$1 out=$2 t_cut=$3 from=${4:-} summary gaps
  summary=$(grep '^received' "$out") || fail "$name: no summary from the receiver"
  [[ $summary == *"exact yes"* && $summary != *RESET* ]] || fail "$name: transfer not byte-exact: $summary"
  gaps=$(awk '$1 == "gap" {printf "%s ms at %+d ms; ", $3, $2 - '"$t_cut"'}' "$out")
  if [[ -n $from ]]; then
    GAP=$(awk '$1 == "gap" && $2 >= '"$from"' && $3 > m {m = $3} END {printf "%d", m + 0.5}' "$out")
  else
    GAP=$(awk '/^received/ {printf "%d", $6 + 0.5}' "$out")
  fi
  log "$name: $summary"
  log "$name: delivery gaps >= 50 ms (relative to the cut): ${gaps:-none}"
  ((GAP <= MAX_GAP_MS)) || fail "$name: longest delivery gap $GAP ms exceeds $MAX_GAP_MS ms"
}

multipath_configs() {
  local n me other kv extra=""
  for kv in "$@"; do extra+="${kv%%=*} = ${kv#*=}\n"; done
  write_configs
  for n in 1 2; do
    if [[ $n == 1 ]]; then me=1 other=2; else me=2 other=1; fi
    sed -i -e "s/^local = \[\"192.0.2.$me\"\]/local = [\"192.0.2.$me\", \"198.51.100.$me\"]/" \
      -e "s/^remote = \[\"192.0.2.$other\"\]/remote = [\"192.0.2.$other\", \"198.51.100.$other\"]/" \
      -e "s/^kind = \"\([a-z]*\)\"$/kind = \"\1\"\n${extra}/" "$(_gw_cfg "$n")"
    grep -q "198.51.100.$me\"\]" "$(_gw_cfg "$n")" || fail "multipath_configs: could not set local in gw$n"
    "$SCTPTUND" --check -c "$(_gw_cfg "$n")" >"$TMPD/check$n.log" 2>&1 ||
      fail "'$SCTPTUND --check -c $(_gw_cfg "$n")' rejected the multi-path config: $(cat "$TMPD/check$n.log")"
  done
}

# ---- a WAN with delay, loss and a bottleneck (tools/delayline; these kernels have no netem) ------
#   wan_delay_up            replace the direct WAN veth by  gw1 wan0 -- [wan: wa | delayline | wb] --
#                           gw2 wan0  (same addresses, one L2 segment through the delay line),
#                           offloads off on all four ends (frames of at most the MTU with their
#                           checksums, as on a real link); starts the delay line with no delay (wan_delay_set changes it)
#   wan_delay_set MS [LOSS_PCT [RATE_MBIT [QUEUE_MS]]]
#                           restart the delay line: MS one-way delay each way, LOSS_PCT random
#                           loss each way (decimal), RATE_MBIT bottleneck (0: none) with a
#                           QUEUE_MS buffer (default 50). Frames in flight at the restart are lost.
#   wan_delay_stats         the delay line's counters so far (stops it; wan_delay_set starts anew)
WAN_DELAY_PID=""
wan_delay_up() {
  need_tool delayline
  ns_add wan
  in_ns gw1 ip link del wan0
  ip -n "${PFX}gw1" link add wan0 type veth peer name wa netns "${PFX}wan"
  ip -n "${PFX}gw2" link add wan0 type veth peer name wb netns "${PFX}wan"
  _sysctl wan net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  _addr gw1 wan0 192.0.2.1/24
  _addr gw2 wan0 192.0.2.2/24
  if [[ $ROUTING == direct ]]; then
    _addr gw1 wan0 fe80::1/64
    _addr gw2 wan0 fe80::2/64
    in_ns gw1 ip route replace 10.2.0.0/16 via 192.0.2.2 dev wan0
    in_ns gw1 ip -6 route replace fd02::/64 via fe80::2 dev wan0
    in_ns gw2 ip route replace 10.1.0.0/16 via 192.0.2.1 dev wan0
    in_ns gw2 ip -6 route replace fd01::/64 via fe80::1 dev wan0
  fi
  local r d
  for r in gw1:wan0 gw2:wan0 wan:wa wan:wb; do
    in_ns "${r%%:*}" ip link set "${r#*:}" up
    # tx off too: a frame the delay line reads carries no checksum yet where the sender left it
    # to the device (CHECKSUM_PARTIAL); sent on as it is, the receiver would drop it.
    in_ns "${r%%:*}" ethtool -K "${r#*:}" tx off tso off gso off gro off >/dev/null 2>&1 ||
      fail "ethtool -K ${r#*:} tx off tso off gso off gro off failed in ${r%%:*}"
    in_ns "${r%%:*}" ethtool -K "${r#*:}" tx-udp-segmentation off >/dev/null 2>&1 || true
  done
  for r in gw1:wan0 gw2:wan0 wan:wa wan:wb; do link_wait_up "${r%%:*}" "${r#*:}"; done
  wan_delay_set 0
  log "WAN through the delay line in ${PFX}wan (gw1 wan0 -- wa | delayline | wb -- gw2 wan0)"
}

wan_delay_set() {
  local ms=$1 loss=${2:-0} rate=${3:-0} queue=${4:-50} i lines=0
  [[ -z $WAN_DELAY_PID ]] || wan_delay_stats >/dev/null
  [[ -f $TMPD/delayline.log ]] && lines=$(wc -l <"$TMPD/delayline.log")
  bg_ns wan "$TMPD/delayline.log" "$TOOLS_DIR/delayline" --a wa --b wb --delay-ms "$ms" --loss "$loss" \
    --rate-mbit "$rate" --queue-ms "$queue" --seed "$RANDOM" --timeout 7200
  WAN_DELAY_PID=$BG_PID
  for ((i = 0; i < 50; i++)); do
    tail -n +"$((lines + 1))" "$TMPD/delayline.log" 2>/dev/null | grep -q "^delayline: wa <-> wb" && break
    kill -0 "$WAN_DELAY_PID" 2>/dev/null || fail "delayline exited: $(tail -n 3 "$TMPD/delayline.log")"
    sleep 0.05
  done
  ((i < 50)) || fail "delayline did not start within 2.5 s"
  WAN_DELAY="${ms} ms one way, ${loss} % loss each way, rate ${rate} Mbit/s"
}

wan_delay_stats() {
  local before
  [[ -n $WAN_DELAY_PID ]] || return 0
  before=$(wc -l <"$TMPD/delayline.log")
  stop_pid "$WAN_DELAY_PID"
  WAN_DELAY_PID=""
  tail -n +"$((before + 1))" "$TMPD/delayline.log" | grep '^delayline [ab]*:' || true
}
