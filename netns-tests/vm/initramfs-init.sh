#!/bin/busybox sh
# shellcheck shell=dash
# /init of the VM's initramfs (built into it by setup.sh; runs under busybox as PID 1).
#
# Loads the bundled modules (virtio PCI, virtio serial, 9p), mounts the host's root filesystem
# read-only from the 9p share "hostroot" at /newroot, tmpfs on /tmp /run /var/tmp, the writable
# shares at their host paths, binds the run's control directory (kernel parameter vm.ctl=, a
# directory on the host fs that run.sh wrote before the boot) to /run/vmctl, prepares /dev (devpts,
# shm, mqueue, /dev/fd, /dev/net/tun, /dev/virtio-ports/NAME), sets the hostname and lo up, then
# switch_roots into the stage-2 script named in the control directory's config
# (netns-tests/vm/guest-init.sh). Work is done here rather than in stage 2 because busybox is
# static and in RAM: each program started from the 9p root costs far more under TCG.
#
# Any failure: "VM-INIT-ERROR ..." on the console (ttyS0) and on the status port when it exists,
# then power off; run.sh reports that no exit status came back.
/bin/busybox mkdir -p /usr/bin /usr/sbin /sbin
/bin/busybox --install -s

fatal() {
  echo "VM-INIT-ERROR: $*" >/dev/console
  for d in /dev /newroot/dev; do
    [ -e $d/virtio-ports/status ] && echo "VM-INIT-ERROR $*" >$d/virtio-ports/status && break
  done
  poweroff -f
  sleep 10
}

mount -t proc proc /proc || fatal "mount /proc"
mount -t sysfs sysfs /sys || fatal "mount /sys"
mount -t devtmpfs devtmpfs /dev || fatal "mount /dev"

ctl="" verbose=0
read -r cmdline </proc/cmdline
for arg in $cmdline; do
  case $arg in
    vm.ctl=*) ctl=${arg#vm.ctl=} ;;
    vm.verbose=1) verbose=1 ;;
  esac
done
trace() {
  local up rest
  [ "$verbose" = 1 ] || return 0
  read -r up rest </proc/uptime
  echo "[vm-init $up] $*" >/dev/console
}

for m in /mods/*.ko; do
  [ -e "$m" ] || continue
  insmod "$m" || fatal "insmod $m failed"
done
trace "modules loaded"

# The virtio serial ports under their names, as udev would link them.
mkdir -p /dev/virtio-ports
for p in /sys/class/virtio-ports/vport*; do
  [ -f "$p/name" ] && ln -sf "../${p##*/}" "/dev/virtio-ports/$(cat "$p/name")"
done
[ -e /dev/virtio-ports/status ] || fatal "no virtio serial port named 'status'"
[ -e /dev/virtio-ports/out ] || fatal "no virtio serial port named 'out'"

[ -n "$ctl" ] || fatal "no vm.ctl= on the kernel command line"
opts=trans=virtio,version=9p2000.L,msize=512000
# A 9p share can be mounted only once: every later use of it is a bind or a move of this mount.
mount -t 9p -o "ro,$opts,cache=loose" hostroot /newroot ||
  fatal "cannot mount the host root filesystem (9p tag hostroot)"
[ -f "/newroot$ctl/config" ] || fatal "no $ctl/config on the host filesystem"
# config sets VM_STAGE2 (path of the stage-2 script), VM_RW_SHARES ("tag:path ..."),
# VM_RW_CACHE (9p cache mode of the writable shares).
# shellcheck disable=SC1090
. "/newroot$ctl/config"

mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /newroot/run || fatal "tmpfs on /run"
mkdir -p /newroot/run/vmctl /newroot/run/vm /newroot/run/lock /newroot/run/user /newroot/run/netns
mount --bind "/newroot$ctl" /newroot/run/vmctl || fatal "bind $ctl to /run/vmctl"
for d in tmp var/tmp; do
  [ -d "/newroot/$d" ] || fatal "/$d missing on the host filesystem"
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "/newroot/$d" || fatal "tmpfs on /$d"
done
for s in $VM_RW_SHARES; do
  tag=${s%%:*} path=${s#*:}
  # Under /tmp, /var/tmp or /run the directory is created in the tmpfs; elsewhere it exists (the
  # host fs is read-only here, so mkdir fails there only for a path that is not on the host).
  [ -d "/newroot$path" ] || mkdir -p "/newroot$path" 2>/dev/null ||
    fatal "writable share $tag: $path is not a directory on the host fs"
  mount -t 9p -o "rw,$opts,cache=${VM_RW_CACHE:-mmap}" "$tag" "/newroot$path" ||
    fatal "cannot mount writable share $tag at $path"
done
trace "shares mounted"

# /dev as a usual system has it.
mkdir -p /dev/pts /dev/shm /dev/mqueue /dev/net
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts || fatal "mount devpts"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm || fatal "mount /dev/shm"
mount -t mqueue mqueue /dev/mqueue 2>/dev/null
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
[ -e /dev/ptmx ] || ln -sf pts/ptmx /dev/ptmx
# tun is a module: its node makes the first open load it (systemd-tmpfiles does this on a normal
# boot from modules.devname).
[ -e /dev/net/tun ] || mknod -m 0666 /dev/net/tun c 10 200
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
hostname sctptund-vm
ip link set lo up 2>/dev/null

trace "switch_root to $VM_STAGE2"
cp /bin/busybox /newroot/run/vm/busybox || fatal "copy busybox to /run/vm"
mount --move /dev /newroot/dev || fatal "move /dev"
mount --move /sys /newroot/sys || fatal "move /sys"
mount --move /proc /newroot/proc || fatal "move /proc"
[ -f "/newroot$VM_STAGE2" ] || fatal "stage-2 script $VM_STAGE2 not found on the host fs"
[ -x /newroot/bin/bash ] || fatal "/bin/bash not found on the host fs"
exec switch_root /newroot /bin/bash "$VM_STAGE2"
