#!/usr/bin/env bash
# run.sh: runs one command as root inside a qemu VM with Debian's stock kernel (kernel SCTP, veth,
# tun, nftables as modules), for the tests that need a kernel this machine does not have.
#
#   bash netns-tests/vm/run.sh [OPTIONS] -- COMMAND [ARG...]
#
# The guest sees the host's root filesystem read-only (9p), with tmpfs on /tmp, /run, /var/tmp,
# and the build directory (plus any --rw DIR) writable at the same paths as on the host. COMMAND
# runs as root in the current directory (same path in the guest), stdin /dev/null, with PATH, HOME
# and the variables passed with --env; its stdout and stderr come back together on this script's
# stdout while it runs. Boot to command takes 4-8 s under TCG (no KVM here) and programs run
# 8-30x slower than on the host: boot one VM per test group, not per test. See README.md.
#
# Options:
#   --build-dir DIR   build directory: writable in the guest, holds the cache (DIR/vm-cache);
#                     default <repo>/build
#   --rw DIR          another host directory to make writable in the guest (repeatable)
#   --env NAME[=VAL]  set NAME in the command's environment (VAL default: the host's value)
#   --timeout S       kill the VM after S seconds (default 900)
#   --mem M           guest memory in MiB (default 2048)
#   --smp N           guest CPUs (default: 2, or 1 on a one-CPU host)
#   --verbose         kernel messages not quieted and shown on stderr as they come, with the
#                     guest init's progress and the boot time
#   --quiet           no "vm: exit status ..." summary line on stderr
#
# Exit status: COMMAND's; 124 if the timeout struck (the VM is killed); 125 if the VM failed
# (qemu would not start, the guest did not boot, or no exit status came back). Messages about
# the VM itself go to stderr, prefixed "vm:". The kernel console is shown on failure.
# Environment: VM_KERNEL (kernel version, see setup.sh), QEMU (emulator binary), VM_CPU (qemu
# -cpu model, default max: SSE4.2, PCLMUL, AVX2 but no AVX-512), VM_BIOS=qboot (qemu's qboot
# firmware instead of SeaBIOS; no faster in the measurements here), VM_APPEND (more kernel
# parameters).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build_dir=$repo/build
timeout_s=900
mem=2048
smp=2
verbose=0
quiet=0
rw_dirs=()
envs=()
(($(nproc) > 1)) || smp=1

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
vmsay() { echo "vm: $*" >&2; }
vmfail() { echo "vm: ERROR: $*" >&2; exit 125; }

while (($#)); do
  case $1 in
    --build-dir) build_dir=${2:?--build-dir needs a directory}; shift 2 ;;
    --rw) rw_dirs+=("${2:?--rw needs a directory}"); shift 2 ;;
    --env) envs+=("${2:?--env needs NAME[=VALUE]}"); shift 2 ;;
    --timeout) timeout_s=${2:?}; shift 2 ;;
    --mem) mem=${2:?}; shift 2 ;;
    --smp) smp=${2:?}; shift 2 ;;
    --verbose) verbose=1; shift ;;
    --quiet) quiet=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "run.sh: unknown option '$1' (the command goes after --)" >&2; usage >&2; exit 2 ;;
  esac
done
(($#)) || { echo "run.sh: no command given (usage: run.sh [OPTIONS] -- COMMAND...)" >&2; exit 2; }
[[ $timeout_s =~ ^[0-9]+$ && $mem =~ ^[0-9]+$ && $smp =~ ^[0-9]+$ ]] ||
  { echo "run.sh: --timeout, --mem and --smp take whole numbers" >&2; exit 2; }
[[ $(id -u) == 0 ]] || vmfail "run as root"

mkdir -p "$build_dir"
build_dir=$(cd "$build_dir" && pwd -P)
cwd=$(pwd -P)
QEMU=${QEMU:-qemu-system-x86_64}

# ---- kernel + initramfs (cached) ------------------------------------------------------------------
cache=$(bash "$here/setup.sh" --build-dir "$build_dir" --print-dir | tail -n1) || vmfail "setup.sh failed"
[[ -s $cache/kernel && -s $cache/initramfs.cpio ]] || vmfail "setup.sh produced no kernel/initramfs in '$cache'"
kver=$(<"$cache/kernel-version")

# ---- per-run directory: control share, FIFOs, logs ------------------------------------------------
tmp=$(mktemp -d /tmp/sctptund-vm.XXXXXX)
qemu_pid=""  # the PID of timeout(1), qemu's parent: TERM to it reaches qemu, KILL follows after 5 s
stop_qemu() {
  local i
  kill -TERM "$qemu_pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do kill -0 "$qemu_pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$qemu_pid" 2>/dev/null || true
}
reader_pid=""
console_pid=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local rc=$? i
  set +e
  trap - EXIT INT TERM
  [[ -z $qemu_pid ]] || stop_qemu
  [[ -z $qemu_pid ]] || wait "$qemu_pid" 2>/dev/null
  # The output reader ends by itself once qemu (the FIFO's only writer) is gone.
  if [[ -n $reader_pid ]]; then
    for ((i = 0; i < 30; i++)); do kill -0 "$reader_pid" 2>/dev/null || break; sleep 0.1; done
    kill -TERM "$reader_pid" 2>/dev/null
    wait "$reader_pid" 2>/dev/null
  fi
  if [[ -n $console_pid ]]; then
    sleep 0.2  # let tail -f show the last console lines
    kill -TERM "$console_pid" 2>/dev/null
    wait "$console_pid" 2>/dev/null
  fi
  rm -rf -- "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'vmsay "interrupted"; exit 130' INT
trap 'vmsay "terminated"; exit 143' TERM

mkdir "$tmp/ctl"
# Writable shares: the build directory and each --rw directory (skipping ones inside another).
declare -a shares=()
add_share() {
  local d s
  d=$(cd "$1" 2>/dev/null && pwd -P) || vmfail "--rw $1: not a directory"
  [[ $d != / ]] || vmfail "--rw /: the root stays read-only"
  for s in "${shares[@]}"; do [[ $d == "$s" || $d == "$s"/* ]] && return 0; done
  shares+=("$d")
}
# The repository itself (writable, so a build directory inside it is too) when the guest would
# not see it: under /tmp, /run, /var/tmp or /dev/shm, which are tmpfs there (a CI clone in /tmp).
case $repo/ in /tmp/* | /run/* | /var/tmp/* | /dev/shm/*) add_share "$repo" ;; esac
add_share "$build_dir"
for d in "${rw_dirs[@]}"; do add_share "$d"; done

rw_spec="" fsdev_args=() i=0
for d in "${shares[@]}"; do
  [[ $d != *[[:space:]:]* ]] || vmfail "writable directory '$d' has a space or colon in its path"
  rw_spec+=" rw$i:$d"
  fsdev_args+=(-fsdev "local,id=rw$i,path=$d,security_model=none"
    -device "virtio-9p-pci,fsdev=rw$i,mount_tag=rw$i")
  i=$((i + 1))
done
# The control directory: read by the guest through the read-only root share (the initramfs binds
# it to /run/vmctl before it hides the host's /tmp under a tmpfs).
cat >"$tmp/ctl/config" <<EOF
VM_STAGE2=$here/guest-init.sh
VM_RW_SHARES="${rw_spec# }"
VM_RW_CACHE=mmap
EOF

{
  echo "# generated by netns-tests/vm/run.sh"
  printf 'cd -- %q || { echo "vm: cannot enter %q in the guest (under /tmp? add --rw)" >&2; exit 125; }\n' "$cwd" "$cwd"
  for e in "${envs[@]}"; do
    name=${e%%=*}
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || vmfail "--env '$e': bad variable name"
    if [[ $e == *=* ]]; then val=${e#*=}; else val=${!name-}; fi
    printf 'export %s=%q\n' "$name" "$val"
  done
  printf 'exec'
  printf ' %q' "$@"
  printf '\n'
} >"$tmp/ctl/cmd"

mkfifo "$tmp/out.in" "$tmp/out.out"
: >"$tmp/status"
: >"$tmp/console.log"

append="console=ttyS0 panic=-1 rdinit=/init mitigations=off cryptomgr.notests tsc=reliable no_timer_check 8250.nr_uarts=1"
append+=" vm.ctl=$tmp/ctl"
if ((verbose)); then append+=" vm.verbose=1"; else append+=" quiet loglevel=3"; fi
append+=${VM_APPEND:+ $VM_APPEND}

bios=()
[[ ${VM_BIOS:-} != qboot || ! -f /usr/share/qemu/qboot.rom ]] || bios=(-bios /usr/share/qemu/qboot.rom)
# shellcheck disable=SC2054  # the commas are qemu's
qemu_args=(
  -nodefaults -no-user-config -display none -no-reboot
  -machine pc,accel=tcg -cpu "${VM_CPU:-max}" -smp "$smp" -m "$mem" "${bios[@]}"
  -kernel "$cache/kernel" -initrd "$cache/initramfs.cpio" -append "$append"
  -chardev "file,id=con,path=$tmp/console.log" -serial chardev:con
  -device virtio-serial-pci,id=vser
  -chardev "pipe,id=out,path=$tmp/out" -device virtserialport,bus=vser.0,chardev=out,name=out
  -chardev "file,id=st,path=$tmp/status" -device virtserialport,bus=vser.0,chardev=st,name=status
  -fsdev "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap"
  -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot
  "${fsdev_args[@]}"
)

# The guest's output arrives through a FIFO (qemu's "pipe" chardev); cat copies it to stdout. If
# stdout goes away (a reader like `head` exits), the rest is drained to /dev/null: a full FIFO
# would stop the guest at its next write.
(
  trap '' PIPE
  cat "$tmp/out.out" 2>/dev/null || exec cat "$tmp/out.out" >/dev/null
) &
reader_pid=$!
if ((verbose)); then
  tail -n +1 -f "$tmp/console.log" >&2 &
  console_pid=$!
fi

t0=${EPOCHREALTIME/./}
# Under timeout(1) as well, so that the VM ends even if this script is killed with SIGKILL; the
# TERM sent below to that PID is passed on to qemu.
timeout -k 5 $((timeout_s + 15)) "$QEMU" "${qemu_args[@]}" </dev/null >"$tmp/qemu.log" 2>&1 &
qemu_pid=$!

now_us() { echo "${EPOCHREALTIME/./}"; }
secs() { printf '%d.%01d' $(($1 / 1000000)) $(($1 % 1000000 / 100000)); }
deadline=$((t0 + timeout_s * 1000000))
t_start=""
timed_out=0
while kill -0 "$qemu_pid" 2>/dev/null; do
  if [[ -z $t_start ]] && grep -q '^VM-CMD-START' "$tmp/status" 2>/dev/null; then
    t_start=$(now_us)
    ((quiet)) || ((!verbose)) || vmsay "command started $(secs $((t_start - t0))) s after qemu was launched (guest: $(grep -a -m1 '^VM-CMD-START' "$tmp/status"))"
  fi
  if (($(now_us) > deadline)); then timed_out=1; break; fi
  sleep 0.05
done
((!timed_out)) || stop_qemu
qemu_rc=0
wait "$qemu_pid" || qemu_rc=$?
qemu_pid=""
wait "$reader_pid" 2>/dev/null || true
reader_pid=""
t_end=$(now_us)
[[ -n $t_start ]] || ! grep -q '^VM-CMD-START' "$tmp/status" || t_start=$t_end

show_console() {
  vmsay "----- qemu messages -----"
  sed 's/^/vm:   /' "$tmp/qemu.log" >&2
  vmsay "----- last 40 lines of the guest console -----"
  tail -n 40 "$tmp/console.log" | sed 's/^/vm:   /' >&2
}

timing="kernel $kver, boot $(if [[ -n $t_start ]]; then secs $((t_start - t0)); else echo '-'; fi) s, total $(secs $((t_end - t0))) s"
if ((timed_out)); then
  vmsay "TIMEOUT: killed the VM after $timeout_s s ($( [[ -n $t_start ]] && echo "the command was running" || echo "the command had not started"); $timing)"
  ((verbose)) || show_console
  exit 124
fi
status_line=$(grep -a '^VM-EXIT-STATUS [0-9]*' "$tmp/status" | tail -n1 || true)
if [[ -z $status_line ]]; then
  err=$(grep -a '^VM-INIT-ERROR' "$tmp/status" | head -n1 || true)
  vmsay "ERROR: the VM ended (qemu status $qemu_rc) without reporting the command's exit status${err:+: $err} ($timing)"
  ((verbose)) || show_console
  exit 125
fi
rc=${status_line#VM-EXIT-STATUS }
((quiet)) || vmsay "exit status $rc ($timing)"
exit "$rc"
