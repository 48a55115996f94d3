#!/usr/bin/env bash
# test-unit-vm.sh: runs the packaged sctptund@.service under a real systemd and checks that its
# hardening lets the daemon do all of its work, and that readiness, reload, restart and stop
# behave as the unit promises. Run by hand (as root; about 3 minutes under TCG):
#
#   bash packaging/test-unit-vm.sh [BUILD_DIR]       (default <repo>/build)
#
# How: builds the .deb (cpack), boots a qemu VM with netns-tests/vm/run.sh (Debian's kernel, the
# host's root file system read-only), and in it starts systemd as PID 1 of a new PID and mount
# namespace (container mode) with the package's files laid over the read-only /usr/sbin,
# /usr/lib/systemd/system and /etc. A driver service then runs the checks; its report comes back
# in BUILD_DIR/unit-vm/report.log and is printed here.
#
# The topology is the demo's: the unit runs the shipped example.toml as instance "site-a" on
# WAN 192.0.2.1 (site A: 10.1.0.1 on lo); site B's gateway runs the shipped site-b.toml as a plain
# process in network namespace "peer" (192.0.2.2, site B: 10.2.0.1 on lo), behind a veth pair.
# Checks: READY=1 after the bounded wait while the peer is down, then STATUS= "tunnel up" once it
# is started; ping and a TCP transfer through the tunnel; only CAP_NET_ADMIN and CAP_NET_RAW,
# NoNewPrivs, a seccomp filter; systemctl reload (accepted, and refused with the daemon left
# running); SIGHUP; a second instance, whose stop leaves /run/sctptund and the first instance's
# socket; Restart=on-failure after SIGKILL; stop removes the interface, routes and rule; an
# invalid and a missing config fail in ExecStartPre; the kernel transport with udp_encapsulation
# fails under ProtectKernelTunables=yes unless net.sctp.udp_port is set beforehand; no
# "Operation not permitted" or "Permission denied" from the daemon anywhere in the journal.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

# ---- in the VM: systemd as PID 1 of new namespaces --------------------------------------------
if [ "${1:-}" = --guest ]; then
  work=$2
  rm -f "$work/report.log"
  rc=0
  unshare --mount --pid --fork --mount-proc --propagation private bash "$0" --pid1 "$work" || rc=$?
  [ -s "$work/report.log" ] || { echo "no report from the driver (systemd exited $rc)"; exit 1; }
  exit "$rc"
fi
if [ "${1:-}" = --pid1 ]; then
  work=$2
  # Writable copies of the read-only host directories the package installs into.
  for d in /etc /usr/sbin /usr/lib/systemd/system; do
    mkdir -p "/run/overlay$d"
    cp -a "$d/." "/run/overlay$d/"
    mount --bind "/run/overlay$d" "$d"
  done
  dpkg -x "$work"/sctptund_*.deb /run/pkg
  cp /run/pkg/usr/sbin/sctptund /usr/sbin/
  cp /run/pkg/lib/systemd/system/sctptund@.service /usr/lib/systemd/system/
  cp -a /run/pkg/etc/sctptund /etc/
  mkdir -p /etc/systemd/system
  cat >/etc/systemd/system/unit-test.service <<EOF
[Unit]
After=basic.target
[Service]
Type=oneshot
ExecStart=/bin/bash $0 --driver $work
StandardOutput=file:$work/report.log
StandardError=inherit
EOF
  printf '[Unit]\nWants=unit-test.service\n' >/etc/systemd/system/unit-test.target
  exec env container=sctptund-test /lib/systemd/systemd --unit=unit-test.target
fi

# ---- in the VM, under systemd: the checks -----------------------------------------------------
if [ "${1:-}" = --driver ]; then
  work=$2
  failures=0
  bad() { echo "FAIL: $*"; failures=$((failures + 1)); }
  ok() { echo "ok: $*"; }
  now() { date +%s.%N; }
  since() { echo "$(now) - $1" | bc; }
  prop() { systemctl show -p "$2" --value "sctptund@$1"; }
  doc=/run/pkg/usr/share/doc/sctptund/examples
  journal() { journalctl --no-pager -o cat -u "sctptund@$1"; }

  # Site A: the shipped example, untouched, with its key where it says.
  install -m 600 "$doc/example.toml" /etc/sctptund/site-a.toml
  (umask 077 && sctptund genkey >/etc/sctptund/site-a-site-b.key)
  # Site B's gateway in a network namespace, from the shipped site-b.toml.
  ip netns add peer
  ip link add wan0 type veth peer name wan0 netns peer
  ip addr add 192.0.2.1/24 dev wan0 && ip link set wan0 up
  ip -n peer addr add 192.0.2.2/24 dev wan0 && ip -n peer link set wan0 up && ip -n peer link set lo up
  ip addr add 10.1.0.1/32 dev lo
  ip -n peer addr add 10.2.0.1/32 dev lo
  mkdir -p /run/peer
  cp "$doc/site-b.toml" /run/peer/site-b.toml
  printf '\n[control]\nsocket = "/run/peer/peer.sock"\n' >>/run/peer/site-b.toml
  peer_pid=""
  start_peer() {
    ip netns exec peer sctptund -c /run/peer/site-b.toml >>/run/peer/log 2>&1 &
    peer_pid=$!
    for _ in $(seq 100); do ip -n peer link show tun0 >/dev/null 2>&1 && break; sleep 0.1; done
    ip -n peer route replace 10.1.0.0/16 dev tun0
  }

  echo "== $(systemctl --version | head -1)"
  echo "== start site-a while the peer is down: READY=1 after the bounded wait"
  t0=$(now)
  systemctl start sctptund@site-a || bad "start sctptund@site-a"
  took=$(since "$t0")
  status=$(prop site-a StatusText)
  echo "started in $took s; Status: $status"
  (($(echo "$took >= 9.5" | bc))) || bad "READY=1 came after $took s, before the 10 s wait"
  [[ $status == "waiting for peers: 0 of 1 peer(s) up" ]] || bad "status '$status'"
  ip route replace 10.2.0.0/16 dev tun0

  echo "== start the peer: STATUS= follows"
  start_peer
  for _ in $(seq 150); do [[ $(prop site-a StatusText) == "tunnel up"* ]] && break; sleep 0.2; done
  status=$(prop site-a StatusText)
  echo "Status: $status"
  [[ $status == "tunnel up: 2 association(s) ready, 1 of 1 peer(s) up" ]] || bad "status '$status'"

  echo "== traffic through the tunnel"
  if ping -c 3 -W 5 -I 10.1.0.1 10.2.0.1 >/run/ping.log 2>&1; then ok "ping"; else
    cat /run/ping.log; bad "ping through the tunnel"; fi
  ip netns exec peer iperf3 -s -1 -B 10.2.0.1 >/dev/null 2>&1 &
  sleep 1
  if iperf3 -c 10.2.0.1 -B 10.1.0.1 -t 3 -f m >/run/iperf.log 2>&1; then
    ok "iperf3: $(grep receiver /run/iperf.log | awk '{print $7, $8}')"
  else cat /run/iperf.log; bad "iperf3 through the tunnel"; fi
  sctptund show -c /etc/sctptund/site-a.toml | sed -n '1,9p'

  echo "== the sandbox as the daemon sees it"
  pid=$(prop site-a MainPID)
  grep -E '^(CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' "/proc/$pid/status"
  [ "$(awk '/^CapEff/ {print $2}' "/proc/$pid/status")" = 0000000000003000 ] ||
    bad "effective capabilities are not exactly CAP_NET_ADMIN + CAP_NET_RAW"
  [ "$(awk '/^NoNewPrivs/ {print $2}' "/proc/$pid/status")" = 1 ] || bad "NoNewPrivs not set"
  [ "$(awk '/^Seccomp:/ {print $2}' "/proc/$pid/status")" = 2 ] || bad "no seccomp filter"
  systemd-analyze security --no-pager sctptund@site-a | tail -1

  echo "== reload"
  if systemctl reload sctptund@site-a; then ok "systemctl reload"; else bad "systemctl reload"; fi
  cp /etc/sctptund/site-a.toml /run/site-a.good
  echo 'bogus = 1' >>/etc/sctptund/site-a.toml
  if systemctl reload sctptund@site-a 2>/dev/null; then bad "a reload of an invalid file succeeded"
  else ok "reload of an invalid file refused"; fi
  cp /run/site-a.good /etc/sctptund/site-a.toml
  [ "$(prop site-a SubState)" = running ] || bad "not running after the refused reload"
  [ "$(prop site-a MainPID)" = "$pid" ] || bad "the daemon was restarted by the refused reload"
  systemctl kill -s HUP --kill-who=main sctptund@site-a
  for _ in $(seq 50); do [ "$(journal site-a | grep -c 'config reloaded')" = 2 ] && break; sleep 0.1; done
  sleep 0.5
  [ "$(prop site-a SubState)" = running ] || bad "SubState $(prop site-a SubState) after SIGHUP"
  [ "$(journal site-a | grep -c 'config reloaded')" = 2 ] || bad "expected 2 reloads in the journal"
  ok "SIGHUP: reloaded, SubState $(prop site-a SubState)"

  echo "== a second instance; stopping it leaves /run/sctptund to the first"
  sed -e 's/^name = "tun0"/name = "tun1"/' -e 's/^addresses = .*/addresses = ["10.255.9.1\/30"]/' \
      -e 's/^# fwmark = 9899/fwmark = 777/' -e 's/^# bypass_table = 9899/bypass_table = 777/' \
      -e 's/^# port = 9899  .*UDP port;.*/port = 9777/' \
      "$doc/example.toml" >/etc/sctptund/site-c.toml
  chmod 600 /etc/sctptund/site-c.toml
  sctptund --check -c /etc/sctptund/site-c.toml
  systemctl start sctptund@site-c || bad "start sctptund@site-c"
  ls /run/sctptund
  systemctl stop sctptund@site-c
  if [ -S /run/sctptund/tun0.sock ]; then ok "site-a's socket is still there"
  else bad "/run/sctptund/tun0.sock gone after stopping another instance"; fi
  if sctptund show -c /etc/sctptund/site-a.toml >/dev/null; then ok "show still reaches site-a"
  else bad "show cannot reach site-a"; fi

  echo "== Restart=on-failure"
  systemctl kill -s KILL --kill-who=main sctptund@site-a
  for _ in $(seq 100); do
    [ "$(prop site-a NRestarts)" = 1 ] && [ "$(prop site-a SubState)" = running ] && break; sleep 0.2
  done
  if [ "$(prop site-a NRestarts)" = 1 ] && [ "$(prop site-a SubState)" = running ]; then
    ok "restarted after SIGKILL: $(prop site-a StatusText)"
  else bad "NRestarts $(prop site-a NRestarts), SubState $(prop site-a SubState) after SIGKILL"; fi

  echo "== stop"
  systemctl stop sctptund@site-a
  ip link show tun0 >/dev/null 2>&1 && bad "tun0 left after stop"
  ip route show | grep -q 'dev tun0' && bad "routes into tun0 left after stop"
  ip rule show | grep -q 'lookup 9899' && bad "ip rule for table 9899 left after stop"
  if [ "$(prop site-a ActiveState)" = inactive ]; then ok "stopped, clean"; else bad "state after stop"; fi

  echo "== invalid and missing configs fail in ExecStartPre"
  printf '[tun]\nmtu = 10\n' >/etc/sctptund/broken.toml
  systemctl start sctptund@broken 2>/dev/null && bad "a broken config started"
  journal broken | grep -m1 'broken.toml:2: \[tun\] mtu' || bad "no error line for the broken config"
  systemctl start sctptund@missing 2>/dev/null && bad "a missing config started"
  journal missing | grep -m1 'missing.toml' || bad "no error line for the missing config"
  systemctl stop sctptund@broken sctptund@missing 2>/dev/null || true

  echo "== kernel transport with udp_encapsulation and ProtectKernelTunables=yes"
  if modinfo sctp >/dev/null 2>&1 || [ -d /sys/module/sctp ]; then
    sed -e 's/^local = .*/local = ["192.0.2.1"]\nkind = "kernel"\nudp_encapsulation = true\nport = 9811/' \
      /etc/sctptund/site-a.toml >/etc/sctptund/kernel.toml
    chmod 600 /etc/sctptund/kernel.toml
    # Not loaded yet (a fresh VM): the daemon's first SCTP socket must make the kernel load it,
    # ProtectKernelModules=yes notwithstanding.
    loaded_before=0
    [ -d /sys/module/sctp ] && loaded_before=1 && echo 0 >/proc/sys/net/sctp/udp_port
    systemctl start sctptund@kernel 2>/dev/null && bad "started although it had to write the sysctl"
    journal kernel | grep -m1 'udp_port: Read-only file system' || bad "no read-only error line"
    if ((!loaded_before)); then
      if [ -d /sys/module/sctp ]; then ok "the sandboxed daemon's SCTP socket loaded the sctp module"
      else bad "the sctp module was not loaded on demand"; fi
    fi
    systemctl stop sctptund@kernel 2>/dev/null || true
    systemctl reset-failed sctptund@kernel 2>/dev/null || true
    echo 9811 >/proc/sys/net/sctp/udp_port
    if systemctl start sctptund@kernel; then ok "starts with net.sctp.udp_port set beforehand"
    else bad "kernel transport with the sysctl preset"; fi
    systemctl stop sctptund@kernel
  else
    echo "SKIP: no SCTP in this kernel"
  fi

  echo "== no permission errors from the daemon"
  if journalctl --no-pager -o cat -t sctptund | grep -iE 'not permitted|permission denied|EPERM|EACCES'; then
    bad "permission errors (above)"
  else ok "none"; fi
  kill "$peer_pid" 2>/dev/null || true

  echo "== $failures failure(s)"
  systemctl exit $((failures > 0))
  exit 0
fi

# ---- on the host ------------------------------------------------------------------------------
build=$(cd "${1:-$repo/build}" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "test-unit-vm.sh: run as root" >&2; exit 1; }
run=$repo/netns-tests/vm/run.sh
[ -f "$run" ] || { echo "test-unit-vm.sh: needs $run" >&2; exit 1; }
work=$build/unit-vm
rm -rf "$work" && mkdir -p "$work"
cmake --build "$build" --target sctptund >/dev/null
(cd "$build" && cpack -G DEB -B "$work/cpack" >"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log" >&2; exit 1; }
cp "$work"/cpack/sctptund_*.deb "$work/"
rc=0
bash "$run" --build-dir "$build" --timeout 600 -- bash "$here/test-unit-vm.sh" --guest "$work" || rc=$?
cat "$work/report.log" 2>/dev/null || true
if ((rc == 0)); then echo "test-unit-vm: PASS"; else echo "test-unit-vm: FAIL ($rc)"; fi
exit "$rc"
