#!/usr/bin/env bash
# smoke.sh: checks, INSIDE the VM, what the kernel-SCTP tests rely on. Run it from the host as
#   bash netns-tests/vm/run.sh -- bash netns-tests/vm/smoke.sh
# Checks: kernel version; an SCTP socket (kernel SCTP, module sctp) and net.sctp.udp_port; two
# network namespaces joined by a veth pair that ping each other; an SCTP association over UDP
# encapsulation (RFC 6951) between them; tun (a TUN device in a namespace); nftables (a table
# with a counter in a namespace); writable /tmp and build directory. Prints one line per check
# and "N passed, N failed"; exits 1 if any failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build_dir=${BUILD_DIR:-$repo/build}
pfx="vmsmoke$$-"
passed=0 failed=0

ok() { echo "ok   - $*"; passed=$((passed + 1)); }
bad() { echo "FAIL - $*"; failed=$((failed + 1)); }
check() {  # check DESCRIPTION CMD...: runs CMD, shows its output only if it fails
  local desc=$1 out rc=0 t0=${EPOCHREALTIME/./} ms; shift
  out=$("$@" 2>&1) || rc=$?
  ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
  if ((rc == 0)); then
    ok "$desc [$ms ms]"
  else
    bad "$desc (status $rc) [$ms ms]"
    [[ -z $out ]] || while IFS= read -r line; do echo "       $line"; done <<<"$out"
  fi
}
cleanup() { ip netns del "${pfx}a" 2>/dev/null; ip netns del "${pfx}b" 2>/dev/null; return 0; }
trap cleanup EXIT

[[ $(id -u) == 0 ]] || { echo "smoke.sh: must run as root (inside the VM: netns-tests/vm/run.sh)"; exit 1; }
echo "kernel: $(uname -r) ($(uname -v))"
echo "cpu: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) CPU(s)"

py=/usr/bin/python3
[[ -x $py ]] || py=python3

check "kernel SCTP socket: socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP)" \
  "$py" -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132).close()'
check "kernel SCTP one-to-many socket: socket(AF_INET6, SOCK_SEQPACKET, IPPROTO_SCTP)" \
  "$py" -c 'import socket; socket.socket(socket.AF_INET6, socket.SOCK_SEQPACKET, 132).close()'
check "module sctp loaded" grep -qw '^sctp' /proc/modules
check "sysctl net.sctp.udp_port exists" test -e /proc/sys/net/sctp/udp_port

check "netns: two namespaces" sh -c "ip netns add ${pfx}a && ip netns add ${pfx}b"
check "veth pair between them" sh -c "
  ip -n ${pfx}a link add v0 type veth peer name v0 netns ${pfx}b &&
  ip -n ${pfx}a addr add 192.0.2.1/24 dev v0 && ip -n ${pfx}b addr add 192.0.2.2/24 dev v0 &&
  ip -n ${pfx}a link set v0 up && ip -n ${pfx}b link set v0 up &&
  ip -n ${pfx}a link set lo up && ip -n ${pfx}b link set lo up"
check "ping a -> b over the veth" ip netns exec "${pfx}a" ping -c 1 -W 5 192.0.2.2

# An SCTP association over UDP encapsulation between the namespaces, as the facts note says:
# net.sctp.udp_port set in each namespace before the sockets are created, the client sets the
# remote encapsulation port (SCTP_REMOTE_UDP_ENCAPS_PORT = 132 on Linux) before connect().
# shellcheck disable=SC2016
sctp_udp_py='
import socket, struct, sys
role = sys.argv[1]
if role == "server":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("192.0.2.2", 5000)); s.listen(1); s.settimeout(20)
    print("listening", flush=True)
    c, _ = s.accept(); c.settimeout(20)
    data = c.recv(100); c.sendall(data.upper()); c.close()
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132)
    # struct sctp_udpencaps {int32 sue_assoc_id; sockaddr_storage sue_address (at 8);
    # uint16 sue_port (at 136, network order)}: 144 bytes on x86-64; wildcard address, family AF_INET
    encaps = struct.pack("=i4xH126s", 0, socket.AF_INET, bytes(126)) + struct.pack("!H", 9899) + bytes(6)
    assert len(encaps) == 144
    s.setsockopt(132, 132, encaps)  # IPPROTO_SCTP, SCTP_REMOTE_UDP_ENCAPS_PORT
    s.settimeout(20); s.connect(("192.0.2.2", 5000)); s.sendall(b"hello over udp")
    r = s.recv(100); assert r == b"HELLO OVER UDP", r; print("reply", r.decode())
'
sctp_udp() {
  local rc=0 spid out
  ip netns exec "${pfx}a" sysctl -qw net.sctp.udp_port=9899 &&
    ip netns exec "${pfx}b" sysctl -qw net.sctp.udp_port=9899 || return 1
  ip netns exec "${pfx}b" "$py" -c "$sctp_udp_py" server >/tmp/vmsmoke-server.log 2>&1 &
  spid=$!
  for _ in $(seq 100); do grep -q listening /tmp/vmsmoke-server.log && break; sleep 0.1; done
  # Count UDP datagrams to port 9899 arriving in b: the association must really be encapsulated.
  ip netns exec "${pfx}b" nft add table inet smoke &&
    ip netns exec "${pfx}b" nft add chain inet smoke in '{ type filter hook input priority 0; }' &&
    ip netns exec "${pfx}b" nft add rule inet smoke in udp dport 9899 counter || rc=1
  timeout 30 ip netns exec "${pfx}a" "$py" -c "$sctp_udp_py" client || rc=1
  wait "$spid" || rc=1
  cat /tmp/vmsmoke-server.log
  out=$(ip netns exec "${pfx}b" nft list chain inet smoke in)
  grep -Eq 'packets [1-9]' <<<"$out" || { echo "no UDP/9899 packets counted: $out"; rc=1; }
  ip netns exec "${pfx}b" nft delete table inet smoke
  return "$rc"
}
check "kernel SCTP association over UDP encapsulation (port 9899) between the namespaces" sctp_udp

check "tun: a TUN device in a namespace" sh -c "
  ip -n ${pfx}a tuntap add dev tun0 mode tun && ip -n ${pfx}a link set tun0 up &&
  ip -n ${pfx}a -br link show dev tun0 && test -c /dev/net/tun"
check "nftables: a table with a counter in a namespace" sh -c "
  ip netns exec ${pfx}a nft add table inet t && ip netns exec ${pfx}a nft add counter inet t c &&
  ip netns exec ${pfx}a nft list counter inet t c >/dev/null"
check "modprobe udp_tunnel" modprobe udp_tunnel
check "ethtool on a veth (the GSO work-around of the facts note)" \
  ip netns exec "${pfx}a" ethtool -K v0 gso off tx-sctp-segmentation off
# shellcheck disable=SC2016  # expanded by sh -c
check "/tmp is writable" sh -c 'f=$(mktemp /tmp/vmsmoke.XXXXXX) && echo x >"$f" && rm "$f"'
check "build dir $build_dir is writable" sh -c "f=\$(mktemp '$build_dir/.vmsmoke.XXXXXX') && echo x >\"\$f\" && rm \"\$f\""
check "/ is read-only" sh -c '! touch /.vmsmoke-should-fail 2>/dev/null'

echo "modules loaded: $(awk '{print $1}' /proc/modules | sort | tr '\n' ' ')"
echo "$passed passed, $failed failed"
((failed == 0))
