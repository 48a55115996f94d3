#!/usr/bin/env bash
# One iperf3 TCP stream through sctptund next to direct routing over the same WAN veth, measured
# in the same run, interleaved round by round (these machines are noisy), with the ratio.
#
#   client ---- gw1 ====== WAN veth ====== gw2 ---- server
#   direct: gw1/gw2 route the LAN prefixes over wan0;  tunnel: into tun0 (sctptund, SCTP/UDP 9899)
#
# Usage: sudo bash bench/tunnel_vs_direct.sh [ROUNDS] [SECONDS]   (defaults 3 rounds, 5 s each)
# Env: SCTPTUND, TOOLS_DIR as for the netns tests.
set -euo pipefail
rounds=${1:-3}
seconds=${2:-5}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROUTING=tunnel
# shellcheck source=../netns-tests/lib.sh
source "$here/../netns-tests/lib.sh"
need_cmds iperf3 awk

topo_up
write_configs
start_gw 1
start_gw 2
wait_tunnel 10
in_ns gw1 ip addr add fe80::1/64 dev wan0 nodad
in_ns gw2 ip addr add fe80::2/64 dev wan0 nodad

route_via() {  # route_via direct|tunnel
  if [[ $1 == direct ]]; then
    in_ns gw1 ip route replace 10.2.0.0/16 via 192.0.2.2 dev wan0
    in_ns gw2 ip route replace 10.1.0.0/16 via 192.0.2.1 dev wan0
  else
    in_ns gw1 ip route replace 10.2.0.0/16 dev tun0
    in_ns gw2 ip route replace 10.1.0.0/16 dev tun0
  fi
}

bg_ns server "$TMPD/iperf3-server.log" iperf3 -s -p 5201
wait_listen server 5201

measure() {  # prints Mbit/s received
  in_ns client timeout $((seconds + 20)) iperf3 -c 10.2.0.2 -p 5201 -t "$seconds" -f m |
    awk '/receiver/ {print $(NF-2)}'
}

declare -a direct tunnel
for ((r = 1; r <= rounds; r++)); do
  route_via direct; d=$(measure)
  route_via tunnel; t=$(measure)
  [[ -n $d && -n $t ]] || fail "iperf3 gave no result in round $r"
  direct+=("$d"); tunnel+=("$t")
  log "round $r: direct $d Mbit/s, sctptund $t Mbit/s"
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
md=$(median "${direct[@]}"); mt=$(median "${tunnel[@]}")
printf '\n%-22s %12s %10s\n' "1 TCP stream, $seconds s" "Mbit/s" "vs direct"
printf '%-22s %12s %10s\n' "direct routing" "$md" "1.00"
printf '%-22s %12s %10s\n' "sctptund (udp)" "$mt" "$(awk -v a="$mt" -v b="$md" 'BEGIN {printf "%.2f", a / b}')"
echo "(median of $rounds interleaved rounds)"
