# shellcheck shell=bash disable=SC2153  # PORT, BG_PID, GW_PID, TMPD come from lib.sh
# lib_contenders.sh: the contenders of bench/compare.sh, on top of netns-tests/lib.sh (source
# lib.sh first, with ROUTING=tunnel). Source it; do not run it.
#
#   client ---- gw1 ============== WAN veth (wan0) ============== gw2 ---- server
#   10.1.0.2    10.1.0.1   192.0.2.1                  192.0.2.2   10.2.0.1  10.2.0.2
#
# Every contender's daemons run side by side for the whole benchmark; only one contender at a time
# is *routed*: gw1's route to 10.2.0.0/16 and gw2's route to 10.1.0.0/16 point into its device
# (contender_activate). The idle ones carry nothing (no keepalives are configured; sctptund sends
# an SCTP heartbeat now and then, which the per-contender WAN counters do not mix up).
#
#   contender        device (gw1/gw2)        WAN traffic (counted by nft)   tunnel addresses
#   direct           wan0, via the peer      ip saddr 10.1/16 or 10.2/16    -
#   sctptund         tun0 (lib.sh start_gw)  udp dport 9899                 10.255.0.1/.2 (lib.sh)
#   sctptund-none    stn0 (encryption none)  udp dport 9921                 10.255.4.1/.2 /30
#   wireguard-go     wg<PID>a / wg<PID>b     udp dport 51820                10.255.1.1/.2 /30
#   wireguard-go-modern  wm<PID>a / wm<PID>b udp dport 51821                10.255.5.1/.2 /30
#   sctptund@NAME    sv<I> (variant I)       udp dport 9930+4*I             10.255.(20+I).1/.2 /30
#   openvpn-none     ovn0                    udp dport 1194                 10.255.2.1 <-> .2
#   openvpn-default  ovd0                    udp dport 1195                 10.255.3.1 <-> .2
#
# wireguard-go's control socket is /var/run/wireguard/NAME.sock whatever the namespace, so its
# interfaces get names unique to this run (wg<PID>a in gw1, wg<PID>b in gw2) instead of wg0.
# wireguard-go is Debian's package (0.0.20220316); wireguard-go-modern is upstream's newest code
# (TUN and UDP offloads), the binary $WIREGUARD_GO (default: ../shared/tools/wireguard-go-modern/
# wireguard-go beside the checkout).
# sctptund@NAME: a variant of sctptund, its own daemon pair with the lines VARIANT_TRANSPORT[NAME]
# added to [transport], VARIANT_PEER[NAME] to [[peer]], and the binary VARIANT_BIN[NAME] (default
# $SCTPTUND): for ablations (what one setting gives) and old-against-new in one run. Declare them
# with variant_add NAME BIN TRANSPORT_LINES PEER_LINES before contenders_setup.
#
# Functions:
#   contenders_setup              WAN offloads off, nft counters, start every contender's daemons
#   contender_activate C          route the LAN prefixes through contender C; flush PMTU/TCP caches
#   contender_alive C             true if C's processes are all still running
#   contender_pids C              the PIDs of C's tunnel processes on both gateways (none for direct)
#   contender_cpu_ticks C         utime+stime (clock ticks) summed over contender_pids C
#   contender_wan_bytes C         L3 bytes of C's traffic on the WAN, both directions (gw1+gw2 ingress)
#   wan_loss_on PCT / wan_loss_off   drop PCT % of the IPv4 packets arriving on wan0, both gateways
#   variant_add NAME BIN TRANSPORT PEER   declare the contender sctptund@NAME (see above)
#   variant_parse SPEC            the same from --variant's NAME=TRANSPORT[|PEER[|BINARY]]
#   contenders_cleanup            stop wireguard-go first and remove its sockets (called by the trap)
#   contenders_stop / contenders_start   stop every contender's daemons / start them again

# shellcheck disable=SC2034  # used by compare.sh
CONTENDERS_ALL=(direct sctptund sctptund-none wireguard-go wireguard-go-modern openvpn-none openvpn-default)
# sctptund-none: a second sctptund pair with encryption = "none" (authenticated handshake, messages
# not sealed) beside the default one, so that the encryption's cost shows as a ratio of one run.
SN_PORT=9921
WG_PORT=51820
OVN_PORT=1194
OVD_PORT=1195
WGM_PORT=51821
WG_IF=([1]="wg$$a" [2]="wg$$b")
WGM_IF=([1]="wm$$a" [2]="wm$$b")
WIREGUARD_GO=${WIREGUARD_GO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/shared/tools/wireguard-go-modern/wireguard-go}
declare -A VARIANT_BIN=() VARIANT_TRANSPORT=() VARIANT_PEER=() VARIANT_INDEX=() VARIANT_PID=()
# The "default cipher" OpenVPN variant: static-key mode's default is BF-CBC + HMAC-SHA1, which
# OpenSSL 3 only offers through its legacy provider (without it: "Cipher BF-CBC not supported").
OVPN_DEFAULT_OPTS=${OVPN_DEFAULT_OPTS:---providers legacy default}
declare -A WG_PID=() WGM_PID=() OVN_PID=() OVD_PID=() SN_PID=()
declare -A OVPN_DATA_CHANNEL=()  # [none]/[default]: the "Data Channel: cipher ..." line OpenVPN logged

variant_add() {
  local name=$1
  [[ $name =~ ^[A-Za-z0-9_.+-]+$ ]] || fail "variant name '$name': letters, digits and _.+- only"
  [[ -z ${VARIANT_INDEX[$name]:-} ]] || fail "variant '$name' declared twice"
  VARIANT_INDEX[$name]=${#VARIANT_INDEX[@]}
  VARIANT_BIN[$name]=${2:-$SCTPTUND}
  VARIANT_TRANSPORT[$name]=${3:-}
  VARIANT_PEER[$name]=${4:-}
  [[ -x ${VARIANT_BIN[$name]} ]] || fail "variant '$name': ${VARIANT_BIN[$name]} is not an executable"
  ((${VARIANT_INDEX[$name]} < 20)) || fail "at most 20 variants"
}

# variant_parse 'NAME=TRANSPORT_LINES[|PEER_LINES[|BINARY]]' (lines separated by ';'): variant_add.
variant_parse() {
  local v=$1 name rest vt vp vb
  name=${v%%=*} rest=${v#*=}
  [[ $v == *=* && -n $name ]] || fail "--variant '$v': NAME=LINES expected"
  IFS='|' read -r vt vp vb <<<"$rest"
  variant_add "$name" "${vb:-$SCTPTUND}" "${vt//;/$'\n'}" "${vp//;/$'\n'}"
}

_counter_name() {
  case $1 in
    direct) echo c_direct ;;
    sctptund) echo c_sctptund ;;
    sctptund-none) echo c_sn ;;
    sctptund@*) echo "c_v${VARIANT_INDEX[${1#sctptund@}]}" ;;
    wireguard-go) echo c_wg ;;
    wireguard-go-modern) echo c_wgm ;;
    openvpn-none) echo c_ovn ;;
    openvpn-default) echo c_ovd ;;
    *) fail "unknown contender '$1'" ;;
  esac
}

# WAN offloads off on both ends of the veth: a veth otherwise passes 64 KB TSO/GSO super-packets
# untouched, so the byte counters would see one header per 64 KB instead of one per 1500 bytes
# (real WAN links carry packets of at most the MTU). With them off the kernel segments before
# the veth; the counters sit on the receiving side's ingress (netdev family), after that split.
_wan_prepare() {
  local n
  for n in 1 2; do
    in_ns "gw$n" ethtool -K wan0 tso off gso off gro off >/dev/null 2>&1 ||
      fail "ethtool -K wan0 tso off gso off gro off failed in gw$n"
    in_ns "gw$n" ethtool -K wan0 tx-udp-segmentation off >/dev/null 2>&1 || true
    in_ns "gw$n" nft -f - <<EOF || fail "could not install the WAN counters in gw$n"
table netdev bench {
  counter c_direct {}
  counter c_sctptund {}
  counter c_sn {}
  counter c_wg {}
  counter c_wgm {}
  counter c_ovn {}
  counter c_ovd {}
  chain wan_in {
    type filter hook ingress device "wan0" priority 0; policy accept;
    ip saddr { 10.1.0.0/16, 10.2.0.0/16 } counter name "c_direct"
    udp dport $PORT counter name "c_sctptund"
    udp dport $SN_PORT counter name "c_sn"
    udp dport $WG_PORT counter name "c_wg"
    udp dport $WGM_PORT counter name "c_wgm"
    udp dport $OVN_PORT counter name "c_ovn"
    udp dport $OVD_PORT counter name "c_ovd"
  }
}
EOF
    local name i
    for name in "${!VARIANT_INDEX[@]}"; do
      i=${VARIANT_INDEX[$name]}
      in_ns "gw$n" nft add counter netdev bench "c_v$i"
      in_ns "gw$n" nft add rule netdev bench wan_in udp dport $((9930 + 4 * i)) counter name "c_v$i"
    done
  done
}

# _start_wireguard BIN PORT NET IF1 IF2 LABEL: a wireguard-go pair (tunnel addresses NET.1/.2);
# their PIDs in _WG_PIDS.
_start_wireguard() {
  local bin=$1 port=$2 net=$3 label=$6 n i sock pid
  local -a ifs=("" "$4" "$5")
  _WG_PIDS=()
  (umask 077
    wg genkey >"$TMPD/$label-1.key"; wg pubkey <"$TMPD/$label-1.key" >"$TMPD/$label-1.pub"
    wg genkey >"$TMPD/$label-2.key"; wg pubkey <"$TMPD/$label-2.key" >"$TMPD/$label-2.pub")
  for n in 1 2; do
    # -f: stay in the foreground (it daemonizes otherwise), so BG_PID is the daemon itself.
    bg_ns "gw$n" "$TMPD/$label$n.log" "$bin" -f "${ifs[$n]}"
    pid=$BG_PID
    _WG_PIDS+=("$pid")
    sock=/var/run/wireguard/${ifs[$n]}.sock
    for ((i = 0; i < 50; i++)); do [[ -S $sock ]] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    [[ -S $sock ]] || fail "$label in gw$n: no control socket $sock after 5 s"
  done
  in_ns gw1 wg set "${ifs[1]}" private-key "$TMPD/$label-1.key" listen-port "$port" \
    peer "$(cat "$TMPD/$label-2.pub")" endpoint "192.0.2.2:$port" allowed-ips "10.2.0.0/16,$net.2/32"
  in_ns gw2 wg set "${ifs[2]}" private-key "$TMPD/$label-2.key" listen-port "$port" \
    peer "$(cat "$TMPD/$label-1.pub")" endpoint "192.0.2.1:$port" allowed-ips "10.1.0.0/16,$net.1/32"
  in_ns gw1 ip addr add "$net.1/30" dev "${ifs[1]}"
  in_ns gw2 ip addr add "$net.2/30" dev "${ifs[2]}"
  for n in 1 2; do in_ns "gw$n" ip link set "${ifs[$n]}" mtu 1420 up; done
  log "$label ($bin) running in gw1 (pid ${_WG_PIDS[0]}, ${ifs[1]}) and gw2 (pid ${_WG_PIDS[1]}, ${ifs[2]}), MTU 1420"
}

_start_wireguard_debian() {
  _start_wireguard wireguard-go "$WG_PORT" 10.255.1 "${WG_IF[1]}" "${WG_IF[2]}" wireguard-go
  WG_PID[1]=${_WG_PIDS[0]} WG_PID[2]=${_WG_PIDS[1]}
}

_start_wireguard_modern() {
  [[ -x $WIREGUARD_GO ]] || fail "wireguard-go-modern: WIREGUARD_GO=$WIREGUARD_GO is not an executable (set WIREGUARD_GO)"
  _start_wireguard "$WIREGUARD_GO" "$WGM_PORT" 10.255.5 "${WGM_IF[1]}" "${WGM_IF[2]}" wireguard-go-modern
  WGM_PID[1]=${_WG_PIDS[0]} WGM_PID[2]=${_WG_PIDS[1]}
}

# _start_sctptund_pair LABEL BIN TUN PORT NET TRANSPORT_LINES PEER_LINES: a second sctptund pair
# beside lib.sh's: its own TUN, UDP port, fwmark / bypass table (= PORT) and control socket, the
# run's key, tunnel addresses NET.1/.2; the lines added to [transport] and [[peer]]. PIDs in
# _SCTPTUND_PIDS. Waits until both sides have a ready association.
_start_sctptund_pair() {
  local label=$1 bin=$2 tun=$3 port=$4 net=$5 transport=$6 peerx=$7 n me other peer tun_addr their cfg i
  _SCTPTUND_PIDS=()
  for n in 1 2; do
    if [[ $n == 1 ]]; then me=192.0.2.1 other=192.0.2.2 peer=site-b tun_addr=$net.1/30 their=10.2.0.0/16
    else me=192.0.2.2 other=192.0.2.1 peer=site-a tun_addr=$net.2/30 their=10.1.0.0/16; fi
    cfg=$TMPD/$label$n.toml
    cat >"$cfg" <<EOF
[tun]
name = "$tun"
mtu = 1400
addresses = ["$tun_addr"]
fwmark = $port
bypass_table = $port

[transport]
kind = "udp"
local = ["$me"]
port = $port
$transport

[control]
socket = "$TMPD/$label$n.sock"

[[peer]]
name = "$peer"
remote = ["$other"]
port = $port
key_file = "$(psk_file)"
$peerx

[[policy]]
prefix = "$their"
action = "tunnel"
peer = "$peer"
EOF
    "$bin" --check -c "$cfg" >"$TMPD/$label-check$n.log" 2>&1 || fail "$label: config rejected: $(cat "$TMPD/$label-check$n.log")"
    bg_ns "gw$n" "$TMPD/$label$n.log" "$bin" -c "$cfg" --log-level info
    _SCTPTUND_PIDS+=("$BG_PID")
  done
  for n in 1 2; do
    for ((i = 0; i < 100; i++)); do
      in_ns "gw$n" timeout 5 "$bin" show -c "$TMPD/$label$n.toml" --json 2>/dev/null | grep -q '"pool_state":"ready"' && break
      kill -0 "${_SCTPTUND_PIDS[n - 1]}" 2>/dev/null || fail "$label in gw$n exited (log: $TMPD/$label$n.log)"
      sleep 0.1
    done
    ((i < 100)) || fail "$label in gw$n: no ready association after 10 s (log: $TMPD/$label$n.log)"
  done
  log "$label running in gw1 and gw2 (pids ${_SCTPTUND_PIDS[*]}), $tun, UDP $port${transport:+, [transport] $transport}${peerx:+, [[peer]] $peerx}"
}

# sctptund-none: encryption = "none" (handshake authenticated, messages not sealed).
_start_sctptund_none() {
  _start_sctptund_pair sn "$SCTPTUND" stn0 "$SN_PORT" 10.255.4 "" 'encryption = "none"'
  SN_PID[1]=${_SCTPTUND_PIDS[0]} SN_PID[2]=${_SCTPTUND_PIDS[1]}
}

_start_variant() {
  local name=$1 i=${VARIANT_INDEX[$1]}
  _start_sctptund_pair "v$i" "${VARIANT_BIN[$name]}" "sv$i" $((9930 + 4 * i)) "10.255.$((20 + i))" \
    "${VARIANT_TRANSPORT[$name]}" "${VARIANT_PEER[$name]}"
  VARIANT_PID[$name,1]=${_SCTPTUND_PIDS[0]} VARIANT_PID[$name,2]=${_SCTPTUND_PIDS[1]}
}

# _start_openvpn none|default: a static-key point-to-point tunnel over UDP in each gateway.
_start_openvpn() {
  local v=$1 n dev port net me other dir i ok logf
  local -a extra
  if [[ $v == none ]]; then dev=ovn0 port=$OVN_PORT net=10.255.2 extra=(--cipher none --auth none)
  else dev=ovd0 port=$OVD_PORT net=10.255.3; read -r -a extra <<<"$OVPN_DEFAULT_OPTS"; fi
  [[ -f $TMPD/ovpn.key ]] || (umask 077; openvpn --genkey secret "$TMPD/ovpn.key" >/dev/null)
  for n in 1 2; do
    if [[ $n == 1 ]]; then me=192.0.2.1 other=192.0.2.2 dir=0; else me=192.0.2.2 other=192.0.2.1 dir=1; fi
    bg_ns "gw$n" "$TMPD/ovpn-$v-gw$n.log" openvpn --dev "$dev" --dev-type tun --proto udp \
      --local "$me" --lport "$port" --remote "$other" --rport "$port" \
      --ifconfig "$net.$n" "$net.$((3 - n))" --secret "$TMPD/ovpn.key" "$dir" \
      "${extra[@]}" --mute-replay-warnings --verb 3
    if [[ $v == none ]]; then OVN_PID[$n]=$BG_PID; else OVD_PID[$n]=$BG_PID; fi
  done
  for n in 1 2; do
    logf="$TMPD/ovpn-$v-gw$n.log" ok=0
    for ((i = 0; i < 150; i++)); do
      grep -q 'Initialization Sequence Completed' "$logf" 2>/dev/null && { ok=1; break; }
      grep -q 'Exiting due to fatal error' "$logf" 2>/dev/null && break
      sleep 0.1
    done
    ((ok)) || fail "openvpn-$v in gw$n did not complete its initialization within 15 s (log: $logf)"
  done
  for ((i = 0; i < 20; i++)); do grep -q "Data Channel: " "$TMPD/ovpn-$v-gw1.log" && break; sleep 0.1; done
  OVPN_DATA_CHANNEL[$v]=$(grep -o "Data Channel: .*" "$TMPD/ovpn-$v-gw1.log" | head -n 1 || true)
  log "openvpn-$v running in gw1 and gw2 (pids $(contender_pids "openvpn-$v")), $dev, UDP $port: ${OVPN_DATA_CHANNEL[$v]}"
}

contenders_setup() {
  local c
  _wan_prepare
  for c in client server; do
    # Do not carry ssthresh/cwnd of one contender's connections over into the next one's.
    in_ns "$c" sysctl -qw net.ipv4.tcp_no_metrics_save=1
  done
  contenders_start
}

# contenders_start / contenders_stop: every contender's daemons (after contenders_setup's first
# start, a restart gives each tunnel a fresh start: no window or loss history carried over).
contenders_start() {
  local c
  if _wanted sctptund; then write_configs; start_gw 1; start_gw 2; fi
  if _wanted sctptund-none; then _start_sctptund_none; fi
  for c in "${CONTENDERS[@]}"; do [[ $c != sctptund@* ]] || _start_variant "${c#sctptund@}"; done
  if _wanted wireguard-go; then _start_wireguard_debian; fi
  if _wanted wireguard-go-modern; then _start_wireguard_modern; fi
  if _wanted openvpn-none; then _start_openvpn none; fi
  if _wanted openvpn-default; then _start_openvpn default; fi
}

contenders_stop() {
  local n v
  for n in 1 2; do
    [[ -z ${GW_PID[$n]:-} ]] || stop_gw "$n"
    [[ -z ${SN_PID[$n]:-} ]] || stop_pid "${SN_PID[$n]}"
    [[ -z ${OVN_PID[$n]:-} ]] || stop_pid "${OVN_PID[$n]}"
    [[ -z ${OVD_PID[$n]:-} ]] || stop_pid "${OVD_PID[$n]}"
    for v in "${!VARIANT_INDEX[@]}"; do [[ -z ${VARIANT_PID[$v,$n]:-} ]] || stop_pid "${VARIANT_PID[$v,$n]}"; done
  done
  contenders_cleanup  # wireguard-go and its sockets
  SN_PID=() OVN_PID=() OVD_PID=() WG_PID=() WGM_PID=() VARIANT_PID=()
}

# CONTENDERS (set by the caller) lists the ones to run; the others are not even started.
_wanted() { local c; for c in "${CONTENDERS[@]}"; do [[ $c == "$1" ]] && return 0; done; return 1; }

contender_pids() {
  case $1 in
    direct) ;;
    sctptund) echo "${GW_PID[1]:-} ${GW_PID[2]:-}" ;;
    sctptund-none) echo "${SN_PID[1]:-} ${SN_PID[2]:-}" ;;
    sctptund@*) echo "${VARIANT_PID[${1#sctptund@},1]:-} ${VARIANT_PID[${1#sctptund@},2]:-}" ;;
    wireguard-go) echo "${WG_PID[1]:-} ${WG_PID[2]:-}" ;;
    wireguard-go-modern) echo "${WGM_PID[1]:-} ${WGM_PID[2]:-}" ;;
    openvpn-none) echo "${OVN_PID[1]:-} ${OVN_PID[2]:-}" ;;
    openvpn-default) echo "${OVD_PID[1]:-} ${OVD_PID[2]:-}" ;;
  esac
}

contender_alive() {
  local p pids
  pids=$(contender_pids "$1")
  for p in $pids; do kill -0 "$p" 2>/dev/null || return 1; done
  [[ $1 == direct || $(wc -w <<<"$pids") == 2 ]]
}

# utime + stime (fields 14 and 15 of /proc/PID/stat, whole process: all its threads) in ticks.
contender_cpu_ticks() {
  local p sum=0 rest
  for p in $(contender_pids "$1"); do
    rest=$(cat "/proc/$p/stat" 2>/dev/null) || return 1
    rest=${rest##*) }  # the command name may contain spaces; fields after it start at 3 (state)
    # shellcheck disable=SC2086
    set -- $rest
    sum=$((sum + ${12} + ${13}))
  done
  echo "$sum"
}

_counter_bytes() {  # _counter_bytes N NAME
  in_ns "gw$1" nft list counter netdev bench "$2" | grep -oE 'bytes [0-9]+' | awk '{print $2}'
}

contender_wan_bytes() {
  local name a b
  name=$(_counter_name "$1")
  a=$(_counter_bytes 1 "$name") && b=$(_counter_bytes 2 "$name") || return 1
  echo $((a + b))
}

contender_activate() {
  local c=$1 r1 r2 role
  case $c in
    direct) r1="via 192.0.2.2 dev wan0" r2="via 192.0.2.1 dev wan0" ;;
    sctptund) r1="dev tun0" r2="dev tun0" ;;
    sctptund-none) r1="dev stn0" r2="dev stn0" ;;
    sctptund@*) r1="dev sv${VARIANT_INDEX[${c#sctptund@}]}" r2=$r1 ;;
    wireguard-go) r1="dev ${WG_IF[1]}" r2="dev ${WG_IF[2]}" ;;
    wireguard-go-modern) r1="dev ${WGM_IF[1]}" r2="dev ${WGM_IF[2]}" ;;
    openvpn-none) r1="dev ovn0" r2="dev ovn0" ;;
    openvpn-default) r1="dev ovd0" r2="dev ovd0" ;;
    *) fail "unknown contender '$c'" ;;
  esac
  # shellcheck disable=SC2086
  in_ns gw1 ip route replace 10.2.0.0/16 $r1
  # shellcheck disable=SC2086
  in_ns gw2 ip route replace 10.1.0.0/16 $r2
  # The previous contender's MTU left path-MTU exceptions on the end hosts' routes (ICMP "frag
  # needed" from a tunnel device with MTU 1400/1420): re-create the default routes to drop them.
  for role in client server; do
    local gw=10.1.0.1; [[ $role == server ]] && gw=10.2.0.1
    in_ns "$role" ip route del default 2>/dev/null || true
    in_ns "$role" ip route add default via "$gw"
    in_ns "$role" ip route flush cache 2>/dev/null || true
    in_ns "$role" ip tcp_metrics flush all 2>/dev/null || true
  done
}

# wan_loss_on PCT: on each gateway drop PCT % of the IPv4 packets arriving on wan0 (before the
# counters), i.e. PCT % random loss in each direction of the WAN. No netem needed.
wan_loss_on() {
  local n
  for n in 1 2; do
    in_ns "gw$n" nft -f - <<EOF
table netdev benchloss {
  chain wan_in {
    type filter hook ingress device "wan0" priority -100; policy accept;
    meta protocol ip numgen random mod 100 < $1 counter drop
  }
}
EOF
  done
}

wan_loss_off() {
  local n
  for n in 1 2; do in_ns "gw$n" nft delete table netdev benchloss 2>/dev/null || true; done
}

contenders_cleanup() {
  local n
  for n in 1 2; do
    [[ -n ${WG_PID[$n]:-} ]] && stop_pid "${WG_PID[$n]}"
    [[ -n ${WGM_PID[$n]:-} ]] && stop_pid "${WGM_PID[$n]}"
    rm -f -- "/var/run/wireguard/${WG_IF[$n]}.sock" "/var/run/wireguard/${WGM_IF[$n]}.sock"
  done
  return 0
}
