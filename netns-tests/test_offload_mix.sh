#!/usr/bin/env bash
# test_offload_mix: gw1's TUN has offloads (GSO super-packets travel as PACKET_GSO), gw2's has
# none ([tun] offload = false): gw2 segments super-packets in software and checksums them, and
# its own packets travel plain. Transfers both ways, IPv4 and IPv6, byte-exact (SHA-256).
#
#   client ---------- gw1 ============== WAN ============== gw2 ---------- server
#   10.1.0.2/24   10.1.0.1/24   192.0.2.1 <-- UDP 9899 --> 192.0.2.2   10.2.0.1/24   10.2.0.2/24
#   fd01::2/64    fd01::1/64    [offload on]   SCTP/UDP   [offload off]  fd02::1/64    fd02::2/64
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmds nc dd

topo_up
write_configs
sed -i 's/^mtu = 1400$/mtu = 1400\noffload = false/' "$(_gw_cfg 2)"
grep -q '^offload = false' "$(_gw_cfg 2)" || fail "could not switch gw2's offloads off"
start_gw 1
start_gw 2
wait_tunnel 10
grep -q "offloads on" "$TMPD/gw1.log" || fail "gw1 did not report TUN offloads on"
grep -q "offloads off" "$TMPD/gw2.log" || fail "gw2 did not report TUN offloads off"

dd if=/dev/urandom of="$TMPD/f20" bs=1M count=20 status=none
nc_transfer client server 10.2.0.2 5001 "$TMPD/f20"
nc_transfer server client 10.1.0.2 5002 "$TMPD/f20"
nc_transfer client server fd02::2 5003 "$TMPD/f20"
nc_transfer server client fd01::2 5004 "$TMPD/f20"
bad=$(gw_counter 2 tun_write)
((bad == 0)) || fail "gw2 could not write $bad packets into its TUN"
log "PASS: offloads on one side only: transfers byte-exact both ways, IPv4 and IPv6"
