#!/usr/bin/env bash
# test_compression: header compression on (the default on both sides): bulk TCP transfers both
# ways over IPv4 and one over IPv6 arrive byte-exact (SHA-256), and the average compressed
# TCP/IPv4 header that `sctptund show --json` reports is at most 6 bytes on each gateway (gw1
# compresses the data of the client's upload and the ACKs of the download; gw2 the reverse).
#
#   client ---------- gw1 ============== WAN ============== gw2 ---------- server
#   10.1.0.2/24   10.1.0.1/24   192.0.2.1 <-- UDP 9899 --> 192.0.2.2   10.2.0.1/24   10.2.0.2/24
#   fd01::2/64    fd01::1/64   [compression]  SCTP/UDP   [compression]  fd02::1/64    fd02::2/64
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmds nc dd

topo_up
write_configs
start_gw 1
start_gw 2
wait_tunnel 10

dd if=/dev/urandom of="$TMPD/f30" bs=1M count=30 status=none
nc_transfer client server 10.2.0.2 5001 "$TMPD/f30"
nc_transfer server client 10.1.0.2 5002 "$TMPD/f30"
nc_transfer client server fd02::2 5003 "$TMPD/f30"

for n in 1 2; do
  packets=$(gw_counter "$n" tcp4_packets)
  avg=$(gw_counter "$n" tcp4_average_header_centibytes)
  ratio=$(gw_counter "$n" ratio_percent)
  errors=$(gw_counter "$n" hc_error)
  bundles=$(gw_counter "$n" bundles_sent)
  bundled=$(gw_counter "$n" bundled_packets)
  log "gw$n: $bundled small packets travelled in $bundles bundles"
  log "gw$n: $packets TCP/IPv4 headers compressed to $((avg / 100)).$(printf '%02d' $((avg % 100))) bytes on average; all headers to $ratio% of their size"
  ((packets > 100)) || fail "gw$n compressed only $packets TCP/IPv4 headers: compression is not in use"
  ((avg <= 600)) || fail "gw$n: average compressed TCP/IPv4 header $avg/100 bytes, more than 6"
  ((errors == 0)) || fail "gw$n: $errors compressed headers could not be rebuilt"
done
log "PASS: compressed transfers byte-exact; TCP/IPv4 headers at most 6 bytes on average"
