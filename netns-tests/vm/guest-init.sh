#!/bin/bash
# Stage 2 of the VM's init: PID 1 in the guest once the initramfs (initramfs-init.sh) has mounted
# everything and switch_root'ed into the host's root filesystem. Runs from the host fs, so edits
# take effect without rebuilding the initramfs. Runs the command run.sh wrote to /run/vmctl/cmd
# with stdout+stderr on the virtio serial port "out", reports "VM-CMD-START <uptime>" and
# "VM-EXIT-STATUS <n>" on the port "status", and powers the VM off. Not for use outside the VM.
# Only shell builtins here apart from the command: every program started costs under TCG.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb
bb=/run/vm/busybox

exec 3>/dev/virtio-ports/status
read -r up _ </proc/uptime
echo "VM-CMD-START $up" >&3
rc=0
# In the background so that this shell, PID 1, keeps reaping orphans while it waits.
bash /run/vmctl/cmd </dev/null >/dev/virtio-ports/out 2>&1 &
wait $! || rc=$?
sync
echo "VM-EXIT-STATUS $rc" >&3
exec 3>&-
"$bb" poweroff -f
# Not reached; if it were, PID 1 exiting panics the kernel and panic=-1 with qemu's -no-reboot
# ends the VM anyway.
exit 1
