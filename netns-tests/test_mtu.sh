#!/usr/bin/env bash
# test_mtu: "MTU without trouble" (issue "real networks", item 4). A TUN MTU of 1500 over a WAN whose
# MTU is 1500: full-size inner packets cross intact, with no IP fragment on the WAN, no MSS
# clamping and no black hole -- SCTP splits a big message into several DATA chunks, so the tunnel
# never needs IP fragmentation. Every link MTU and both [tun] mtu are 1500. Two runs, [tun]
# offload = true (the kernel hands the daemon GSO super-packets of up to 64 KB) and offload =
# false (one packet of at most 1500 bytes per read); each run:
#   - 20 MB TCP each way over IPv4 and 5 MB each way over IPv6, byte-exact (nc + SHA-256); the
#     receiving host saw TCP segments of IP length 1500 (IPv4) / payload length 1460 (IPv6) and no
#     bigger ones, every SYN / SYN-ACK it saw carried MSS 1460 (IPv6: 1440) and none another or no
#     MSS, and no ICMP "fragmentation needed" / ICMPv6 "packet too big" reached either host;
#   - udpcheck (build/udpcheck): 1000 UDP datagrams of 1472 bytes (IPv4 packets of 1500 bytes,
#     DF set) client -> server and server -> client, then 1000 of 1452 bytes over IPv6 (1500-byte
#     packets) each way; every one arrives once, intact, and the receiving host counted exactly
#     1000 unfragmented 1500-byte packets (IPv4: with DF);
#   - the sending gateway's TUN reads average > 1500 bytes with offloads (super-packets carried)
#     and <= 1500 without; the daemons dropped nothing (but the kernel's own IPv6 chatter out of
#     tun0, which matches no policy rule).
# Over the whole test (after the counters' self-check): 0 IPv4 fragments and 0 IPv6 fragment
# headers arrived on either gateway's wan0 (netdev ingress: before any reassembly), no tunnel
# datagram on the WAN was longer than 1500 bytes, and `sctptund show --json` largest_datagram_out
# is <= 1472 on both gateways.
#
#   client ----------- gw1 ============== WAN (mtu 1500) ============== gw2 ----------- server
#   eth0           lan0   [sctptund]  wan0 <--- UDP 9899 ---> wan0  [sctptund]   lan0           eth0
#   10.1.0.2/24    10.1.0.1/24   192.0.2.1                    192.0.2.2   10.2.0.1/24    10.2.0.2/24
#   fd01::2/64     fd01::1/64    2001:db8:ffff::1  (self-check only) ::2  fd02::1/64     fd02::2/64
#                       tun0 mtu 1500                              tun0 mtu 1500
#   every veth mtu 1500
#   nft on eth0    lan0: TSO+GSO off   nft on wan0 (both ends):     lan0: TSO+GSO off    nft on eth0
#   (ingress, GRO off)                 ingress; UDP segmentation off                     (ingress, GRO off)
#   udpcheck / nc  <---------------------------------------------------------------->  udpcheck / nc
#
# Where the counting happens, and why the offloads of some veths are switched off (ethtool):
#   - The receiving hosts count on eth0's netdev ingress hook with GRO off on eth0 (the veth
#     default; set and verified), so they see each packet as its sender put it on the link.
#   - gw1's and gw2's lan0 have TSO/GSO off: a GSO super-packet the gateway forwards to its LAN
#     is cut into wire-size segments there, as a real NIC does in hardware. (The sending hosts
#     keep TSO, so with offload = true the super-packets really reach the daemon.)
#   - Both wan0 have UDP segmentation (tx-udp-segmentation) off: the daemon's UDP GSO batches are
#     cut into single datagrams before the "wire", so the WAN counters see every datagram.
# The WAN, host fragment, "packet too big" and MSS counters are checked to count first (pings of
# 2000 bytes with -M dont over the WAN and LAN, a route with mtu 1400 that makes the gateway
# answer "fragmentation needed", a TCP handshake with advmss 1000) and reset before the runs.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmds nc dd nft ethtool
need_tool udpcheck

UDP_COUNT=1000
UDP_RATE=2000  # datagrams per second: 1000 take 0.5 s

# ---- topology, MTUs, offloads -----------------------------------------------------------------

topo_up
_addr gw1 wan0 2001:db8:ffff::1/64  # IPv6 on the WAN only for the fragment counter's self-check
_addr gw2 wan0 2001:db8:ffff::2/64

LINKS="client:eth0 gw1:lan0 gw1:wan0 gw2:wan0 gw2:lan0 server:eth0"
link_mtu() { ip -n "${PFX}$1" -o link show dev "$2" | grep -oE ' mtu [0-9]+' | awk '{print $2}'; }
for l in $LINKS; do
  in_ns "${l%%:*}" ip link set dev "${l#*:}" mtu 1500
  m=$(link_mtu "${l%%:*}" "${l#*:}")
  [[ $m == 1500 ]] || fail "${l#*:} in ${l%%:*} has MTU $m, not 1500"
done
log "every link MTU is 1500 ($LINKS)"

# ethtool_off ROLE DEV FEATURE...: switch the features off and verify they are off.
ethtool_off() {
  local role=$1 dev=$2 f args=() k
  shift 2
  for f in "$@"; do args+=("$f" off); done
  in_ns "$role" ethtool -K "$dev" "${args[@]}" 2>"$TMPD/ethtool.err" ||
    fail "ethtool -K $dev ${args[*]} failed in $role: $(cat "$TMPD/ethtool.err")"
  k=$(in_ns "$role" ethtool -k "$dev")
  for f in "$@"; do
    case $f in
      gro) f=generic-receive-offload ;; gso) f=generic-segmentation-offload ;; tso) f=tcp-segmentation-offload ;;
    esac
    grep -qE "^[[:space:]]*$f: off" <<<"$k" || fail "$dev in $role: feature $f is not off: $(grep -E "$f:" <<<"$k")"
  done
}
ethtool_off client eth0 gro
ethtool_off server eth0 gro
ethtool_off gw1 lan0 tso gso
ethtool_off gw2 lan0 tso gso
ethtool_off gw1 wan0 tx-udp-segmentation
ethtool_off gw2 wan0 tx-udp-segmentation
log "GRO off on the hosts' eth0, TSO/GSO off on the gateways' lan0, UDP segmentation off on wan0"

# ---- counters ---------------------------------------------------------------------------------

# On both gateways' wan0, before any reassembly (netdev ingress).
for n in 1 2; do
  in_ns "gw$n" nft -f - <<EOF
table netdev stmtu {
  counter frag4 {}
  counter frag6 {}
  counter tunnel {}
  counter udp_full {}
  counter udp_over {}
  chain in {
    type filter hook ingress device "wan0" priority 0; policy accept;
    meta protocol ip ip frag-off & 0x3fff != 0 counter name "frag4"
    meta protocol ip6 exthdr frag exists counter name "frag6"
    meta protocol ip udp dport $PORT counter name "tunnel"
    meta protocol ip udp dport $PORT ip length 1401-1500 counter name "udp_full"
    meta protocol ip udp dport $PORT ip length > 1500 counter name "udp_over"
  }
}
EOF
done
# On the hosts' eth0 (what arrives from their gateway). UDP test traffic uses ports 7000-7099.
for r in client server; do
  in_ns "$r" nft -f - <<EOF
table netdev stmtu {
  counter tcp4_full {}
  counter tcp4_over {}
  counter tcp6_full {}
  counter tcp6_over {}
  counter syn4_mss1460 {}
  counter syn6_mss1440 {}
  counter syn4_other {}
  counter syn6_other {}
  counter syn_nomss {}
  counter udp4 {}
  counter udp4_full {}
  counter udp6 {}
  counter udp6_full {}
  counter frags {}
  counter too_big {}
  chain in {
    type filter hook ingress device "eth0" priority 0; policy accept;
    meta protocol ip ip protocol tcp ip length 1500 counter name "tcp4_full"
    meta protocol ip ip protocol tcp ip length > 1500 counter name "tcp4_over"
    meta protocol ip6 meta l4proto tcp ip6 length 1460 counter name "tcp6_full"
    meta protocol ip6 meta l4proto tcp ip6 length > 1460 counter name "tcp6_over"
    meta protocol ip tcp flags & syn == syn tcp option maxseg size 1460 counter name "syn4_mss1460"
    meta protocol ip tcp flags & syn == syn tcp option maxseg size != 1460 counter name "syn4_other"
    meta protocol ip6 tcp flags & syn == syn tcp option maxseg size 1440 counter name "syn6_mss1440"
    meta protocol ip6 tcp flags & syn == syn tcp option maxseg size != 1440 counter name "syn6_other"
    tcp flags & syn == syn tcp option maxseg missing counter name "syn_nomss"
    meta protocol ip udp dport 7000-7099 counter name "udp4"
    meta protocol ip udp dport 7000-7099 ip length 1500 ip frag-off & 0x7fff == 0x4000 counter name "udp4_full"
    meta protocol ip6 udp dport 7000-7099 counter name "udp6"
    meta protocol ip6 udp dport 7000-7099 ip6 length 1460 counter name "udp6_full"
    meta protocol ip ip frag-off & 0x3fff != 0 counter name "frags"
    meta protocol ip6 exthdr frag exists counter name "frags"
    meta protocol ip icmp type destination-unreachable icmp code frag-needed counter name "too_big"
    meta protocol ip6 icmpv6 type packet-too-big counter name "too_big"
  }
}
EOF
done
# snap ROLE: C[NAME] = packet count of every counter in ROLE's table (one nft call).
declare -A C=()
snap() {
  local name pk
  C=()
  while read -r name pk; do C[$name]=$pk; done < <(in_ns "$1" nft list table netdev stmtu |
    awk '$1 == "counter" && $3 == "{" {n = $2} $1 == "packets" && n != "" {print n, $2; n = ""}')
  ((${#C[@]} > 0)) || fail "no nftables counters in $1's table netdev stmtu"
}
reset_counters() { local r; for r in "$@"; do in_ns "$r" nft reset counters table netdev stmtu >/dev/null; done; }

# ---- self-check: the counters count -------------------------------------------------------------

in_ns gw1 ping -M dont -c 1 -s 2000 -W 2 -q 192.0.2.2 >/dev/null || fail "a fragmented IPv4 ping gw1 -> gw2 failed"
in_ns gw1 ping -6 -c 1 -s 2000 -W 2 -q 2001:db8:ffff::2 >/dev/null || fail "a fragmented IPv6 ping gw1 -> gw2 failed"
for n in 1 2; do  # the request arrives in fragments at gw2, the echo reply at gw1
  snap "gw$n"
  f4=${C[frag4]} f6=${C[frag6]}
  ((f4 >= 2 && f6 >= 2)) || fail "self-check: gw$n's wan0 counted $f4 IPv4 and $f6 IPv6 fragments of 2000-byte pings (want >= 2 each)"
done
for h in client:gw1:1 server:gw2:2; do
  IFS=: read -r r g i <<<"$h"
  # A 2000-byte ping to the own gateway: its reply arrives in fragments.
  in_ns "$r" ping -M dont -c 1 -s 2000 -W 2 -q "10.$i.0.1" >/dev/null || fail "self-check: fragmented ping $r -> $g failed"
  in_ns "$r" ping -6 -c 1 -s 2000 -W 2 -q "fd0$i::1" >/dev/null || fail "self-check: fragmented IPv6 ping $r -> $g failed"
  snap "$r"
  f=${C[frags]}
  ((f >= 4)) || fail "self-check: $r's eth0 counted $f fragments of two 2000-byte ping replies (want >= 4)"
  # A route with mtu 1400 on the gateway: a 1500-byte DF packet gets "fragmentation needed" back.
  in_ns "$g" ip route add 10.99.0.0/24 via "192.0.2.$((3 - i))" dev wan0 mtu 1400
  in_ns "$g" ip -6 route add fd99::/64 via "2001:db8:ffff::$((3 - i))" dev wan0 mtu 1400
  in_ns "$r" ping -M "do" -c 1 -s 1472 -W 1 -q 10.99.0.1 >/dev/null 2>&1 || true
  in_ns "$r" ping -6 -c 1 -s 1452 -W 1 -q fd99::1 >/dev/null 2>&1 || true
  in_ns "$g" ip route del 10.99.0.0/24
  in_ns "$g" ip -6 route del fd99::/64
  snap "$r"
  p=${C[too_big]}
  ((p >= 2)) || fail "self-check: $r's eth0 counted $p ICMP 'fragmentation needed' / 'packet too big' (want >= 2)"
done
# A SYN-ACK with MSS 1000 (a route with advmss on gw2) counts as "another MSS" on the server.
in_ns gw2 ip route add 10.2.0.2/32 dev lan0 advmss 1000
in_ns gw2 ip -6 route add fd02::2/128 dev lan0 advmss 1000
for a in 10.2.0.1 fd02::1; do
  # shellcheck disable=SC2016  # $1 is expanded by sh
  bg_ns gw2 "$TMPD/nc-selfcheck.log" sh -c 'exec nc -l "$1" 5999 </dev/null' _ "$a"
  lpid=$BG_PID
  wait_listen gw2 5999
  in_ns server timeout 5 nc -z -w 2 "$a" 5999 || fail "self-check: server could not connect to gw2 [$a]:5999"
  wait_pid "$lpid" 5 || true
done
in_ns gw2 ip route del 10.2.0.2/32
in_ns gw2 ip -6 route del fd02::2/128
snap server
s4=${C[syn4_other]} s6=${C[syn6_other]}
((s4 >= 1 && s6 >= 1)) || fail "self-check: the server counted $s4 IPv4 and $s6 IPv6 SYN-ACKs with MSS 1000 (want >= 1 each)"
reset_counters gw1 gw2 client server
log "self-check passed: the fragment, 'packet too big' and MSS counters count; all reset to 0"

# ---- the runs -----------------------------------------------------------------------------------

write_configs
for n in 1 2; do
  sed -i 's/^mtu = 1400$/mtu = 1500/' "$(_gw_cfg "$n")"
  grep -q '^mtu = 1500$' "$(_gw_cfg "$n")" || fail "could not set mtu = 1500 in gw$n's config"
done
cp "$(_gw_cfg 1)" "$TMPD/gw1.base" && cp "$(_gw_cfg 2)" "$TMPD/gw2.base"

# udp_check FROM TO ADDR PORT SIZE: udpcheck from FROM to a receiver on TO at ADDR:PORT.
udp_check() {
  local from=$1 to=$2 addr=$3 port=$4 size=$5 rpid i out="$TMPD/udpcheck.$4.out" sline rline
  bg_ns "$to" "$out" "$TOOLS_DIR/udpcheck" recv --port "$port" --count "$UDP_COUNT" --size "$size" --timeout 30
  rpid=$BG_PID
  for ((i = 0; i < 50; i++)); do
    [[ -n $(in_ns "$to" ss -Hlun "sport = :$port") ]] && break
    sleep 0.1
  done
  [[ -n $(in_ns "$to" ss -Hlun "sport = :$port") ]] || fail "udpcheck receiver on $to port $port not bound after 5 s"
  sline=$(in_ns "$from" "$TOOLS_DIR/udpcheck" send --host "$addr" --port "$port" --count "$UDP_COUNT" \
    --size "$size" --rate "$UDP_RATE" --timeout 30 2>&1) || { stop_pid "$rpid"; fail "udpcheck send $from -> [$addr]:$port failed: $sline"; }
  wait_pid "$rpid" 35 || fail "udpcheck receiver $from -> $to [$addr]:$port: $(cat "$out")"
  rline=$(grep 'udpcheck recv:' "$out")
  log "UDP $from -> $to [$addr]:$port: ${sline#udpcheck send: }"
  log "    ${rline#udpcheck }"
}

# Packets gwN dropped for any reason but no_rule: the kernel's own IPv6 packets out of tun0
# (MLDv2 listener reports from its link-local address, seen with nft) match no policy rule and are
# dropped as no_rule from time to time; they are not test traffic.
# From one snapshot: the kernel's MLD reports on tun0 (no_rule) may come between two reads.
drops_but_no_rule() {
  local j
  j=$(gw_json "$1")
  echo $(($(jnum "$j" dropped_packets) - $(jnum "$j" no_rule)))
}

# run OFFLOAD TCP_PORT_BASE UDP_PORT_BASE
run() {
  local off=$1 pb=$2 ub=$3 n r b p avg d
  for n in 1 2; do
    cp "$TMPD/gw$n.base" "$(_gw_cfg "$n")"
    sed -i "s/^mtu = 1500\$/mtu = 1500\noffload = $off/" "$(_gw_cfg "$n")"
    grep -q "^offload = $off\$" "$(_gw_cfg "$n")" || fail "could not set offload = $off in gw$n's config"
    "$SCTPTUND" --check -c "$(_gw_cfg "$n")" >"$TMPD/check$n.log" 2>&1 ||
      fail "gw$n's config (mtu 1500, offload $off) rejected: $(cat "$TMPD/check$n.log")"
  done
  log "==== run with [tun] mtu = 1500, offload = $off"
  local lines1=0 lines2=0  # log lines before this run's start
  [[ -f $TMPD/gw1.log ]] && lines1=$(wc -l <"$TMPD/gw1.log")
  [[ -f $TMPD/gw2.log ]] && lines2=$(wc -l <"$TMPD/gw2.log")
  start_gw 1
  start_gw 2
  for n in 1 2; do
    m=$(link_mtu "gw$n" tun0)
    [[ $m == 1500 ]] || fail "gw$n's tun0 has MTU $m, not 1500"
  done
  wait_tunnel 15
  local want_log="offloads off"
  [[ $off == true ]] && want_log="offloads on"
  tail -n +"$((lines1 + 1))" "$TMPD/gw1.log" | grep -q "$want_log" || fail "gw1 did not report TUN $want_log"
  tail -n +"$((lines2 + 1))" "$TMPD/gw2.log" | grep -q "$want_log" || fail "gw2 did not report TUN $want_log"
  reset_counters client server
  declare -A drop0=() rp0=() rb0=()
  for n in 1 2; do
    drop0[$n]=$(drops_but_no_rule "$n")
    rp0[$n]=$(gw_counter "$n" tun_read_packets)
    rb0[$n]=$(gw_counter "$n" tun_read_bytes)
  done

  nc_transfer client server 10.2.0.2 "$((pb + 1))" "$TMPD/f20"
  nc_transfer server client 10.1.0.2 "$((pb + 2))" "$TMPD/f20"
  nc_transfer client server fd02::2 "$((pb + 3))" "$TMPD/f5"
  nc_transfer server client fd01::2 "$((pb + 4))" "$TMPD/f5"
  # The average size of what each gateway read from its TUN during the transfers.
  for n in 1 2; do
    p=$(($(gw_counter "$n" tun_read_packets) - rp0[$n])) b=$(($(gw_counter "$n" tun_read_bytes) - rb0[$n]))
    ((p > 0)) || fail "gw$n read nothing from its TUN during the transfers"
    avg=$((b / p))
    log "gw$n read $p packets, $b bytes from tun0 (average $avg bytes)"
    if [[ $off == true ]]; then
      ((avg > 1500)) || fail "gw$n: offload = true, but its TUN reads average $avg bytes: no super-packets carried"
    else
      ((avg <= 1500)) || fail "gw$n: offload = false, but its TUN reads average $avg bytes (> 1500)"
    fi
  done

  udp_check client server 10.2.0.2 "$((ub + 1))" 1472
  udp_check server client 10.1.0.2 "$((ub + 2))" 1472
  udp_check client server fd02::2 "$((ub + 3))" 1452
  udp_check server client fd01::2 "$((ub + 4))" 1452

  for r in client server; do
    local t4 t4o t6 t6o s4 s4o s6 s6o sn u4 u4f u6 u6f fr pt
    snap "$r"
    t4=${C[tcp4_full]} t4o=${C[tcp4_over]} t6=${C[tcp6_full]} t6o=${C[tcp6_over]}
    s4=${C[syn4_mss1460]} s4o=${C[syn4_other]} s6=${C[syn6_mss1440]} s6o=${C[syn6_other]}
    sn=${C[syn_nomss]} u4=${C[udp4]} u4f=${C[udp4_full]} u6=${C[udp6]} u6f=${C[udp6_full]}
    fr=${C[frags]} pt=${C[too_big]}
    log "$r received: TCP IPv4 $t4 of length 1500 ($t4o longer), TCP IPv6 $t6 of payload 1460 ($t6o longer);" \
      "SYNs with MSS 1460/1440: $s4/$s6, other MSS: $s4o/$s6o, none: $sn; UDP 1500-byte IPv4 (DF) $u4f of $u4," \
      "IPv6 $u6f of $u6; fragments $fr, 'too big' ICMP $pt"
    ((t4 > 0)) || fail "offload $off: $r received no TCP/IPv4 segment of IP length 1500: full-size segments did not cross"
    ((t6 > 0)) || fail "offload $off: $r received no TCP/IPv6 segment of payload length 1460: full-size segments did not cross"
    ((t4o == 0 && t6o == 0)) || fail "offload $off: $r received $t4o + $t6o TCP packets over 1500 bytes (merged: the counters do not see wire packets)"
    ((s4 >= 2 && s6 >= 2)) || fail "offload $off: $r saw $s4 IPv4 SYNs with MSS 1460 and $s6 IPv6 SYNs with MSS 1440 (want >= 2 each: SYN and SYN-ACK)"
    ((s4o == 0 && s6o == 0 && sn == 0)) || fail "offload $off: $r saw SYNs with another MSS ($s4o IPv4, $s6o IPv6) or none ($sn): MSS clamped?"
    ((u4 == UDP_COUNT && u4f == UDP_COUNT)) || fail "offload $off: $r received $u4 test UDP/IPv4 packets, $u4f of them 1500 bytes with DF (want $UDP_COUNT)"
    ((u6 == UDP_COUNT && u6f == UDP_COUNT)) || fail "offload $off: $r received $u6 test UDP/IPv6 packets, $u6f of them 1500 bytes (want $UDP_COUNT)"
    ((fr == 0)) || fail "offload $off: $r received $fr IP fragments"
    ((pt == 0)) || fail "offload $off: $r received $pt ICMP 'fragmentation needed' / 'packet too big': a path MTU below 1500"
  done
  for n in 1 2; do
    d=$(($(drops_but_no_rule "$n") - drop0[$n]))
    ((d == 0)) || fail "offload $off: gw$n dropped $d packets during the run: $(gw_show "$n" --json | grep -oE '"drops"[^}]*')"
  done
  wan_checks "offload $off"
  stop_gw 1
  stop_gw 2
}

# Cumulative since the self-check: no fragment on the WAN, no datagram over 1500 bytes.
wan_checks() {
  local n f4 f6 u uf uo largest
  for n in 1 2; do
    snap "gw$n"
    f4=${C[frag4]} f6=${C[frag6]} u=${C[tunnel]} uf=${C[udp_full]} uo=${C[udp_over]}
    largest=$(gw_counter "$n" largest_datagram_out)
    log "$1: gw$n's wan0 received $u tunnel datagrams ($uf of IP length 1401-1500, $uo longer), $f4 IPv4 fragments," \
      "$f6 IPv6 fragments; gw$n's largest datagram sent: $largest bytes of UDP payload"
    ((u > 1000)) || fail "$1: gw$n's wan0 counted only $u tunnel datagrams: the counter does not see the tunnel"
    ((uf > 0)) || fail "$1: gw$n's wan0 saw no tunnel datagram of IP length 1401-1500: SCTP does not fill the WAN MTU"
    ((f4 == 0 && f6 == 0)) || fail "$1: $f4 IPv4 fragments and $f6 IPv6 fragments arrived on gw$n's wan0"
    ((uo == 0)) || fail "$1: $uo tunnel datagrams longer than 1500 bytes arrived on gw$n's wan0"
    ((largest <= 1472)) || fail "$1: gw$n sent a datagram of $largest bytes: does not fit the 1500-byte WAN MTU"
  done
}

dd if=/dev/urandom of="$TMPD/f20" bs=1M count=20 status=none
dd if=/dev/urandom of="$TMPD/f5" bs=1M count=5 status=none
T0=$(now_ms)
run true 5000 7000
run false 5100 7010
log "PASS: MTU 1500 end to end, offloads on and off: TCP 20 MB (IPv4) + 5 MB (IPv6) each way byte-exact" \
  "in full-size segments with MSS 1460/1440 unclamped, 4 x $UDP_COUNT UDP datagrams of 1500-byte packets intact," \
  "no fragment and no 'too big' anywhere, largest tunnel datagram <= 1472 bytes ($(($(now_ms) - T0)) ms)"
