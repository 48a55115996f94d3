#!/usr/bin/env bash
# test_nat_v6: test_nat.sh over an IPv6-only WAN with a NAT66 masquerade (steps 1-4: learning,
# the NAT's address changing mid-transfer, keepalives across 20 s idle, gw2 restarting). Topology and steps: see
# test_nat.sh.
#
#   client ---- gw1 wan0 2001:db8:64::2 ---- nat (masquerade -> 2001:db8:f::10, then ::11) ---- gw2 wan0 2001:db8:f::2 ---- server
set -euo pipefail
WAN_FAMILY=6 exec bash "$(dirname "${BASH_SOURCE[0]}")/test_nat.sh"
