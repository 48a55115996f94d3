#!/usr/bin/env bash
# group.sh: every kernel-transport scenario, one after another, in ONE VM boot (run it through
# netns-tests/vm/run.sh; it needs a kernel with SCTP). Prints each scenario's result and time and
# exits non-zero if any failed.
#   kernel kernel       test_kernel.sh: native SCTP, ping / transfers / concurrent flows
#   kernel-udp udp      test_kernel.sh: the kernel's SCTP-in-UDP with a usrsctp gateway (interop)
#   udp kernel-udp      the same with the roles swapped
#   auto auto           test_kernel.sh: auto picks the kernel
#   failover            test_kernel_failover.sh: native multi-homing, primary path cut twice
#   ipv6                test_kernel_v6.sh: IPv6-only WAN (kernel, kernel-udp, kernel-udp vs udp),
#                       an IPv4 and an IPv6 path in one association, a dual-stack gateway and an
#                       IPv4-only peer (v4-mapped addresses)
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SCTPTUND=${SCTPTUND:?set SCTPTUND} TOOLS_DIR=${TOOLS_DIR:?set TOOLS_DIR}
modprobe sctp 2>/dev/null || true
[[ -e /proc/sys/net/sctp ]] || { echo "group.sh: this kernel has no SCTP (no /proc/sys/net/sctp)" >&2; exit 1; }
echo "kernel $(uname -r); SCTPTUND=$SCTPTUND"

results=() failed=0
run() {  # run NAME TIMEOUT_S COMMAND...
  local name=$1 limit=$2 t0 rc=0
  shift 2
  t0=$(date +%s)
  echo "===================== $name"
  timeout --kill-after=10 "$limit" "$@" || rc=$?
  results+=("$(printf '%-22s %s  %4d s' "$name" "$( ((rc == 0)) && echo PASS || echo "FAIL ($rc)")" $(($(date +%s) - t0)))")
  ((rc == 0)) || failed=$((failed + 1))
}
run "kernel kernel" 600 env TRANSPORTS="kernel kernel" bash "$here/test_kernel.sh"
run "kernel-udp udp" 600 env TRANSPORTS="kernel-udp udp" bash "$here/test_kernel.sh"
run "udp kernel-udp" 600 env TRANSPORTS="udp kernel-udp" bash "$here/test_kernel.sh"
run "auto auto" 600 env TRANSPORTS="auto auto" bash "$here/test_kernel.sh"
run "failover" 600 bash "$here/test_kernel_failover.sh"
run "ipv6" 600 bash "$here/test_kernel_v6.sh"
echo "===================== kernel group results"
printf '%s\n' "${results[@]}"
exit $((failed > 0))
