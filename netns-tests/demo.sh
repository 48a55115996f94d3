#!/usr/bin/env bash
# demo: two sites joined by sctptund, end to end, in throw-away network namespaces.
#
#      site A (10.1.0.0/16, fd01::/64)                      site B (10.2.0.0/16, fd02::/64)
#   client ---------- gw1 ============== WAN ============== gw2 ---------- server
#   10.1.0.2/24   10.1.0.1/24   192.0.2.1 <-- UDP 9899 --> 192.0.2.2   10.2.0.1/24   10.2.0.2/24
#   fd01::2/64    fd01::1/64     [sctptund]   SCTP/UDP     [sctptund]   fd02::1/64    fd02::2/64
#                 tun0 10.255.0.1/30                    tun0 10.255.0.2/30
#
# Usage: sudo netns-tests/demo.sh   (SCTPTUND=path/to/sctptund, default ./build/sctptund)
#        DEMO_PAUSE=1 keeps everything up until you press Enter (at most 10 minutes), so you can
#        poke around with `ip netns exec st<PID>-gw1 ...`.
set -euo pipefail
_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROUTING=tunnel
# shellcheck source=lib.sh
source "$_here/lib.sh"
need_cmds nc dd

if [[ -t 1 ]]; then say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }; else say() { printf '\n==> %s\n' "$*"; }; fi

say "Building four namespaces: client, gw1 (site A gateway), gw2 (site B gateway), server"
topo_up
write_configs
echo "gw1's configuration ($TMPD/gw1.toml):"
sed 's/^/    /' "$TMPD/gw1.toml"

say "Starting sctptund on both gateways; each creates tun0, the script routes the remote site into it"
start_gw 1
start_gw 2
in_ns gw1 ip route show dev tun0 | sed 's/^/    gw1: /'
in_ns gw1 ip -6 route show dev tun0 | sed 's/^/    gw1: /'

say "Waiting for the SCTP association, then pinging site B from site A"
wait_tunnel 10
in_ns client ping -c 3 -i 0.3 10.2.0.2
in_ns client ping -6 -c 3 -i 0.3 fd02::2

say "Copying 20 MB of random bytes client -> server through the tunnel (nc, SHA-256 checked)"
dd if=/dev/urandom of="$TMPD/demo.bin" bs=1M count=20 status=none
nc_transfer client server 10.2.0.2 5001 "$TMPD/demo.bin"

if command -v iperf3 >/dev/null 2>&1; then
  say "iperf3 for 5 seconds, client -> server through the tunnel"
  bg_ns server "$TMPD/iperf3-server.log" iperf3 -s -1 -p 5201
  iperf_srv=$BG_PID
  wait_listen server 5201
  in_ns client timeout 30 iperf3 -c 10.2.0.2 -p 5201 -t 5 || fail "iperf3 through the tunnel failed"
  wait_pid "$iperf_srv" 10 || true
else
  say "iperf3 not installed: skipping the throughput run"
fi

say "What the gateways say (sctptund show)"
for n in 1 2; do
  echo "--- gw$n ---"
  gw_show "$n" || echo "(sctptund show failed in gw$n)"
done

if [[ ${DEMO_PAUSE:-0} == 1 ]]; then
  say "Everything is up; namespaces are $(ns client), $(ns gw1), $(ns gw2), $(ns server). Press Enter to tear down."
  read -r -t 600 _ || true
fi
say "Done; tearing the namespaces down"
