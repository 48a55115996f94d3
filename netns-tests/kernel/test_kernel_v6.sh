#!/usr/bin/env bash
# test_kernel_v6: the kernel transport over an IPv6 underlay (issue "real networks", item 3; needs a
# kernel with SCTP: run it in the VM, netns-tests/vm/). One topology, five phases, each with fresh
# daemons and configs (PHASES picks some: "v6-kernel v6-kernel-udp v6-interop mixed v4-peer"):
#   v6-kernel      kernel kernel: native SCTP over IPv6 on wan0 (the WAN has no IPv4 there)
#   v6-kernel-udp  kernel-udp kernel-udp: the kernel's SCTP in UDP/IPv6 (its v6 encapsulation
#                  socket, Linux 5.11 and later)
#   v6-interop     kernel-udp udp: the same against usrsctp, over IPv6
#       each: ping v4 + v6 through the tunnel, NC_MB MB byte-exact each way (nc + SHA-256), gw1 sends
#       the tunnel as SCTP (or SCTP in UDP to port 9899) over IPv6 only (nftables on gw1's output),
#       `sctptund show` names the path [2001:db8:ffff::2]:9899 as up and primary
#   mixed          kernel kernel, two paths of different families in one association: IPv4 on
#                  wan1, IPv6 on wan0 (an AF_INET6 socket; without care its IPv4 peer addresses
#                  come back v4-mapped, ::ffff:a.b.c.d). Both paths up, the primary named plainly;
#                  its link is cut (nftables drops SCTP there): pings go over the other family,
#                  and the path event names the cut address plainly
#   v4-peer        gw1 binds IPv4 and IPv6 (AF_INET6 socket), gw2 is IPv4 only, and gw2's INIT
#                  reaches gw1 while gw1 waits to retry: gw1 accepts it as its peer's (the
#                  v4-mapped case: once "not a peer of ours", aborted)
# Every phase: no association aborted as from an unknown address, no "::ffff:" in logs or show.
#
#   client ------ gw1 ==== wan0  2001:db8:ffff::1 <-- IPv6 only --> 2001:db8:ffff::2 ==== gw2 ------ server
#   10.1.0.2/24   10.1.0.1/24                                                       10.2.0.1/24   10.2.0.2/24
#   fd01::2/64    fd01::1/64 = wan1  198.51.100.1  <-- IPv4 only -->  198.51.100.2 = fd02::1/64    fd02::2/64
#                 [sctptund]        (used by the mixed and v4-peer phases)          [sctptund]
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
need_cmds nc dd nft ethtool
NC_MB=${NC_MB:-2}  # per direction and phase; the VM runs code 10-30x slower than the host
PHASES=${PHASES:-v6-kernel mixed v4-peer v6-kernel-udp v6-interop}
T0=$(now_ms)
A1=2001:db8:ffff::1 A2=2001:db8:ffff::2 B1=198.51.100.1 B2=198.51.100.2
B2RE=${B2//./\\.}  # B2 in a regular expression

topo_up
wan1_up
_addr gw1 wan0 $A1/64
_addr gw2 wan0 $A2/64
in_ns gw1 ip addr del 192.0.2.1/24 dev wan0
in_ns gw2 ip addr del 192.0.2.2/24 dev wan0
for ((i = 0; i < 50; i++)); do  # duplicate address detection (off in lib.sh's namespaces; bounded: 5 s)
  [[ -z $(in_ns gw1 ip -6 addr show dev wan0 tentative) && -z $(in_ns gw2 ip -6 addr show dev wan0 tentative) ]] && break
  sleep 0.1
done
in_ns gw1 ping -6 -c 1 -W 2 -q $A2 >/dev/null || fail "gw1 cannot reach gw2 over the IPv6 WAN (wan0)"
in_ns gw1 ping -c 1 -W 2 -q $B2 >/dev/null || fail "gw1 cannot reach gw2 over the IPv4 WAN (wan1)"
# Linux 6.1 mishandles segmentation offloads with SCTP in UDP (see test_kernel.sh): off on wan0.
for n in 1 2; do
  in_ns "gw$n" ethtool -K wan0 gso off tx-sctp-segmentation off tx-udp-segmentation off >/dev/null 2>&1 ||
    fail "ethtool -K wan0 gso off ... failed in gw$n"
done
log "WAN: wan0 IPv6 only ($A1 <-> $A2), wan1 IPv4 only ($B1 <-> $B2); wan0 offloads off"

# What gw1 sends on the WAN, by family (output hook: the kernel's own SCTP and its UDP tunnel).
in_ns gw1 nft -f - <<EOF
table inet kv6 {
  counter sctp6 {}
  counter udp6 {}
  counter sctp4 {}
  counter udp4 {}
  chain out {
    type filter hook output priority 0; policy accept;
    meta nfproto ipv6 meta l4proto sctp counter name "sctp6"
    meta nfproto ipv6 udp dport $PORT counter name "udp6"
    meta nfproto ipv4 meta l4proto sctp counter name "sctp4"
    meta nfproto ipv4 udp dport $PORT counter name "udp4"
  }
}
EOF
# kv6_read: gw1's four counters into SCTP6 UDP6 SCTP4 UDP4 (one nft call: each takes a while here).
kv6_read() {
  local out
  out=$(in_ns gw1 nft list table inet kv6)
  read -r SCTP6 UDP6 SCTP4 UDP4 <<<"$(awk '/counter (sctp6|udp6|sctp4|udp4) \{/ {name = $2}
    name != "" && /packets/ {for (i = 1; i < NF; i++) if ($i == "packets") v[name] = $(i + 1); name = ""}
    END {print v["sctp6"] + 0, v["udp6"] + 0, v["sctp4"] + 0, v["udp4"] + 0}' <<<"$out")"
}
dd if=/dev/urandom of="$TMPD/payload" bs=1M count="$NC_MB" status=none

# The phases' configs derive from lib.sh's (written and checked once): config N KIND LOCALS REMOTES
# [KEY=VALUE...] writes gwN's with [transport] kind KIND (udp, kernel or kernel-udp), local and the
# peer's remote (TOML array bodies) and more [transport] keys, and checks it (`sctptund --check`).
write_configs
cp "$(_gw_cfg 1)" "$TMPD/base1.toml"
cp "$(_gw_cfg 2)" "$TMPD/base2.toml"
config() {
  local n=$1 kind=$2 locals=$3 remotes=$4 cfg kv
  cfg=$(_gw_cfg "$n")
  shift 4
  [[ $kind == kernel-udp ]] && set -- udp_encapsulation=true "$@"
  sed -e "s|^kind = .*|kind = \"${kind%-udp}\"|" -e "s|^local = \[.*\]$|local = [$locals]|" \
    -e "s|^remote = \[.*\]$|remote = [$remotes]|" "$TMPD/base$n.toml" >"$cfg"
  for kv in "$@"; do sed -i "/^\[transport\]$/a ${kv%%=*} = ${kv#*=}" "$cfg"; done
  grep -qxF "local = [$locals]" "$cfg" && grep -qxF "remote = [$remotes]" "$cfg" ||
    fail "could not write gw$n's local / remote"
  "$SCTPTUND" --check -c "$cfg" >"$TMPD/check$n.log" 2>&1 || fail "gw$n's config rejected: $(cat "$TMPD/check$n.log")"
}

# Path lines of gwN's `show`: "path: kernel -> ADDR:PORT  STATE[, primary]  ...", PORT the slot's.
paths() { gw_show "$1" | grep -E '^ +path: ' || true; }

# clean PHASE PATHS: no association aborted as an unknown address's (the daemons log each first
# one), no v4-mapped address in the logs or in gw1's PATHS.
clean() {
  local n
  for n in 1 2; do
    ! grep -q "no peer's address" "$TMPD/gw$n.log" ||
      fail "$1: gw$n aborted associations from addresses it took for no peer's: $(grep -m 2 "no peer's" "$TMPD/gw$n.log")"
    ! grep -q '::ffff:' "$TMPD/gw$n.log" || fail "$1: v4-mapped address in gw$n's log: $(grep -m 3 '::ffff:' "$TMPD/gw$n.log")"
  done
  [[ $2 != *::ffff:* ]] || fail "$1: v4-mapped address in gw1's show: $2"
}

# end PHASE: stop both daemons (together: each takes seconds here); their logs are kept as
# gwN-PHASE.log.
end() {
  local n
  alive 1
  alive 2
  kill -TERM "${GW_PID[2]}"
  for n in 1 2; do
    stop_gw "$n"
    mv "$TMPD/gw$n.log" "$TMPD/gw$n-$1.log"
  done
}
alive() { kill -0 "${GW_PID[$1]}" 2>/dev/null || fail "gw$1's daemon has died"; }

RESULTS=()
done_phase() { RESULTS+=("$(printf '%-14s PASS %4d s' "$1" $((($(now_ms) - $2) / 1000)))"); log "---- $1: PASS"; }

# v6 NAME KIND1 KIND2: the IPv6-only WAN phases.
v6() {
  local name=$1 t0 s6 u6 s4 u4 p
  t0=$(now_ms)
  log "---- $name: $2 $3 over IPv6 only"
  [[ $3 == udp ]] && _sysctl gw2 net.sctp.udp_port=0  # an earlier kernel-udp phase's UDP socket holds the port
  config 1 "$2" "\"$A1\"" "\"$A2\""
  config 2 "$3" "\"$A2\"" "\"$A1\""
  kv6_read
  s6=$SCTP6 u6=$UDP6 s4=$SCTP4 u4=$UDP4
  start_gw 1
  start_gw 2
  wait_tunnel 30  # pings client -> server, IPv4 and IPv6
  in_ns server ping -6 -c 2 -i 0.2 -W 3 -q fd01::2 >/dev/null || fail "$name: ping -6 server -> client failed"
  nc_transfer client server 10.2.0.2 5001 "$TMPD/payload"
  nc_transfer server client fd01::2 5002 "$TMPD/payload"
  kv6_read
  s6=$((SCTP6 - s6)) u6=$((UDP6 - u6)) s4=$((SCTP4 - s4)) u4=$((UDP4 - u4))
  log "$name: gw1 sent $s6 SCTP/IPv6 packets, $u6 UDP/IPv6 datagrams to port $PORT; $s4 SCTP/IPv4, $u4 UDP/IPv4"
  ((s4 == 0 && u4 == 0)) || fail "$name: tunnel traffic over IPv4 on an IPv6 WAN ($s4 SCTP, $u4 UDP)"
  if [[ $2 == kernel ]]; then
    ((s6 > 100 && u6 == 0)) || fail "$name: native SCTP/IPv6 expected: $s6 SCTP packets, $u6 UDP datagrams"
  else
    ((u6 > 100 && s6 == 0)) || fail "$name: SCTP in UDP/IPv6 expected: $s6 SCTP packets, $u6 UDP datagrams"
  fi
  p=$(paths 1)
  log "$name: gw1 $(head -n 1 <<<"$p" | sed 's/^ *//')"
  [[ -n $p ]] && ! grep -vqE "kernel -> \[$A2\]:[0-9]+  up, primary" <<<"$p" ||
    fail "$name: gw1's show does not name [$A2] as the up primary path of every association: $p"
  clean "$name" "$p"
  end "$name"
  done_phase "$name" "$t0"
}

# cut_sctp ROLE DEV / uncut_sctp ROLE: drop SCTP both ways on DEV in ROLE (nftables), and undo it.
cut_sctp() {
  in_ns "$1" nft -f - <<EOF
table inet kcut {
  chain in { type filter hook prerouting priority -400; policy accept; iifname "$2" meta l4proto sctp drop; }
  chain out { type filter hook output priority -400; policy accept; oifname "$2" meta l4proto sctp drop; }
}
EOF
}
uncut_sctp() { in_ns "$1" nft delete table inet kcut; }

mixed() {
  local t0 p i prim dev other got
  t0=$(now_ms)
  log "---- mixed: kernel kernel, one IPv4 path (wan1) and one IPv6 path (wan0)"
  config 1 kernel "\"$B1\", \"$A1\"" "\"$B2\", \"$A2\"" probe_interval_ms=100 failover_ms=300
  config 2 kernel "\"$B2\", \"$A2\"" "\"$B1\", \"$A1\"" probe_interval_ms=100 failover_ms=300
  start_gw 1
  start_gw 2
  wait_tunnel 30
  # Every association has both paths, confirmed by heartbeats ("up"; bounded: 10 s).
  for ((i = 0; i < 20; i++)); do
    p=$(paths 1)
    (($(grep -c ' up' <<<"$p") == 4 && $(grep -c ', primary' <<<"$p") == 2)) && break
    sleep 0.5
  done
  log "mixed: gw1's paths:"
  sed 's/^ */  /' <<<"$p"
  grep -qE "kernel -> $B2RE:[0-9]+  up" <<<"$p" || fail "mixed: gw1's show has no IPv4 path to $B2 up: $p"
  grep -qE "kernel -> \[$A2\]:[0-9]+  up" <<<"$p" || fail "mixed: gw1's show has no IPv6 path to [$A2] up: $p"
  (($(grep -c ' up' <<<"$p") == 4)) || fail "mixed: not all 4 paths (2 associations x 2) up after 10 s: $p"
  prim=$(grep -m 1 ', primary' <<<"$p" | sed -E 's/.*-> ([^ ]*)  up, primary.*/\1/' || true)
  case $prim in
    "$B2:"*) dev=wan1 other="[$A2]" got=$B2 ;;
    "[$A2]:"*) dev=wan0 other=$B2 got=$A2 ;;
    *) fail "mixed: gw1's show marks no configured address as the primary path ('$prim'): $p" ;;
  esac
  in_ns client ping -c 3 -i 0.2 -W 3 -q 10.2.0.2 >/dev/null || fail "mixed: ping client -> server failed"
  cut_sctp gw1 "$dev"
  log "mixed: cut SCTP on gw1's $dev (the primary path, to $got): the tunnel must use $other"
  for ((i = 0; i < 20; i++)); do
    in_ns client ping -c 1 -W 1 -q 10.2.0.2 >/dev/null 2>&1 && break
    sleep 0.2
  done
  in_ns client ping -c 5 -i 0.2 -W 3 -q 10.2.0.2 >/dev/null || fail "mixed: no ping over $other with $dev cut"
  in_ns server ping -6 -c 5 -i 0.2 -W 3 -q fd01::2 >/dev/null || fail "mixed: no ping -6 over $other with $dev cut"
  for ((i = 0; i < 20; i++)); do  # the kernel's path event, named plainly (bounded: 4 s)
    grep -qE "path to ${got//./\\.} (potentially failed|unreachable)" "$TMPD/gw1.log" && break
    sleep 0.2
  done
  grep -E "path to" "$TMPD/gw1.log" | sed 's/^/  /' || true
  grep -qE "path to ${got//./\\.} (potentially failed|unreachable)" "$TMPD/gw1.log" ||
    fail "mixed: gw1 logged no failure of the path to $got"
  uncut_sctp gw1
  clean mixed "$p"
  end mixed
  done_phase mixed "$t0"
}

v4peer() {
  local t0 n p i
  t0=$(now_ms)
  log "---- v4-peer: gw1 binds $B1 and $A1 (AF_INET6 socket), gw2 only $B2 (AF_INET)"
  config 1 kernel "\"$B1\", \"$A1\"" "\"$B2\""
  config 2 kernel "\"$B2\"" "\"$B1\""
  # gw1's own INITs are refused on their way out (ICMP protocol unreachable: the kernel aborts the
  # connect at once, and gw1 backs off and tries again), so the associations can only be
  # started by gw2's INITs, whenever the slow VM gets to them; allowed again once both are up.
  in_ns gw1 nft -f - <<EOF
table inet kinit {
  chain out { type filter hook output priority -400; policy accept; meta nfproto ipv4 meta l4proto sctp @th,96,8 1 reject with icmp type prot-unreachable; }
}
EOF
  start_gw 1
  start_gw 2
  wait_tunnel 30
  # Both associations up, their primary paths too: a heartbeat late on the slow VM can leave a
  # path potentially-failed for a while, and the next heartbeat clears it (bounded: 20 s).
  for ((i = 0; i < 40; i++)); do
    p=$(paths 1)
    (($(grep -c ' up, primary' <<<"$p") == 2)) && break
    sleep 0.5
  done
  in_ns gw1 nft delete table inet kinit
  clean v4-peer "$p"
  n=$(grep -c "association .* up .*started by the peer" "$TMPD/gw1.log" || true)
  log "v4-peer: gw1 accepted $n association(s) started by gw2"
  grep "association" "$TMPD/gw1.log" | sed 's/^/  /' || true
  ((n > 0)) || fail "v4-peer: no association was started by gw2 (the case under test); gw1 always won the race"
  [[ -n $p ]] && ! grep -vqE "kernel -> $B2RE:[0-9]+  up, primary" <<<"$p" ||
    fail "v4-peer: gw1's show does not name $B2 as the up primary path of every association: $p"
  end v4-peer
  done_phase v4-peer "$t0"
}

for phase in $PHASES; do
  case $phase in
    v6-kernel) v6 v6-kernel kernel kernel ;;
    v6-kernel-udp) v6 v6-kernel-udp kernel-udp kernel-udp ;;
    v6-interop) v6 v6-interop kernel-udp udp ;;
    mixed) mixed ;;
    v4-peer) v4peer ;;
    *) fail "unknown phase '$phase' in PHASES" ;;
  esac
done
for r in "${RESULTS[@]}"; do log "$r"; done
log "PASS: the kernel transport over IPv6 and mixed-family WANs: $PHASES ($(( ($(now_ms) - T0) / 1000 )) s)"
