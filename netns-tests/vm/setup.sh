#!/usr/bin/env bash
# setup.sh: prepares what netns-tests/vm/run.sh boots. Idempotent; a second run only checks.
#
#   bash netns-tests/vm/setup.sh [--build-dir DIR] [--kernel VERSION] [--print-dir]
#
# 1. Installs qemu-system-x86 and linux-image-amd64 with apt-get unless already installed (Debian's
#    stock kernel; its modules land in the host's /lib/modules/<ver>, which the guest sees through
#    the shared root filesystem, so modprobe works there for sctp, veth, tun, nf_tables ...).
# 2. Builds, in DIR/vm-cache/<kernel version>/ (DIR defaults to <repo>/build):
#      vmlinux        the kernel, uncompressed out of /boot/vmlinuz-<ver> (an ELF with a PVH entry
#                     that qemu boots directly: under TCG that saves the ~4 s of xz decompression)
#      initramfs.cpio a small uncompressed initramfs: busybox (from busybox-static, fetched with
#                     `apt-get download` and unpacked with `dpkg -x`, never installed), the init
#                     script initramfs-init.sh, and the modules needed to mount the 9p shares and
#                     to reach the virtio serial ports, resolved with modprobe --show-depends
#    The cache is keyed by the kernel version and a hash of this script and initramfs-init.sh, so
#    editing either rebuilds it. --print-dir prints the cache directory on the last line of stdout.
#
# Environment: VM_KERNEL (kernel version to use; default: the one linux-image-amd64 depends on).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build_dir=$repo/build
kver=${VM_KERNEL:-}
print_dir=0

while (($#)); do
  case $1 in
    --build-dir) build_dir=$2; shift 2 ;;
    --kernel) kver=$2; shift 2 ;;
    --print-dir) print_dir=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

say() { echo "vm-setup: $*" >&2; }
die() { echo "vm-setup: ERROR: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (apt-get, and qemu shares / with the guest)"

# ---- 1. packages ---------------------------------------------------------------------------------
# qemu-system-x86: the emulator (TCG; KVM is not available here). linux-image-amd64: the stock
# kernel and its modules. xz-utils, cpio, kmod, binutils (readelf): used below to build the
# cache. python3: smoke.sh opens kernel SCTP sockets with it.
packages=(qemu-system-x86 linux-image-amd64 xz-utils cpio kmod binutils python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  # INITRD=No: the kernel package's hook skips update-initramfs (the VM boots its own small
  # initramfs; generating Debian's twice took about 2.5 min of the 2.7 min install here).
  INITRD=No apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found after installing qemu-system-x86"

# ---- kernel version ------------------------------------------------------------------------------
if [[ -z $kver ]]; then
  # linux-image-amd64 depends on exactly one linux-image-<ver>-amd64.
  kver=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null |
    grep -oE 'linux-image-[0-9][^ ,(]*' | head -n1 | sed 's/^linux-image-//') || true
fi
if [[ -z $kver || ! -f /boot/vmlinuz-$kver ]]; then
  # Fallback: the newest kernel that has both an image and its modules.
  kver=""
  while read -r v; do
    [[ -d /lib/modules/$v/kernel ]] && kver=$v
  done < <(for f in /boot/vmlinuz-*; do [[ -e $f ]] && echo "${f#/boot/vmlinuz-}"; done | sort -V)
fi
[[ -n $kver ]] || die "no kernel found in /boot (is linux-image-amd64 installed?)"
[[ -f /boot/vmlinuz-$kver ]] || die "/boot/vmlinuz-$kver missing"
[[ -f /lib/modules/$kver/modules.dep ]] || die "/lib/modules/$kver/modules.dep missing"

# ---- 2. cache ------------------------------------------------------------------------------------
key=$(cat "${BASH_SOURCE[0]}" "$here/initramfs-init.sh" | sha256sum | cut -c1-12)
cache_root=$build_dir/vm-cache
cache=$cache_root/$kver
stamp=$cache/stamp
want_stamp="kernel=$kver key=$key vmlinuz=$(stat -c %s.%Y "/boot/vmlinuz-$kver")"

if [[ -f $stamp && $(cat "$stamp") == "$want_stamp" && -s $cache/initramfs.cpio && -s $cache/kernel ]]; then
  ((print_dir)) && echo "$cache"
  exit 0
fi

mkdir -p "$cache_root"
# One builder at a time; whoever waited finds the cache built.
exec 9>"$cache_root/.lock"
flock -w 300 9 || die "could not lock $cache_root/.lock within 300 s"
if [[ -f $stamp && $(cat "$stamp") == "$want_stamp" && -s $cache/initramfs.cpio && -s $cache/kernel ]]; then
  ((print_dir)) && echo "$cache"
  exit 0
fi
say "building $cache (kernel $kver)"
work=$(mktemp -d "$cache_root/.work.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

# busybox-static: downloaded and unpacked only (installing it would replace the host's busybox).
(cd "$work" && apt-get download busybox-static >/dev/null 2>"$work/download.log") ||
  die "apt-get download busybox-static failed: $(cat "$work/download.log")"
dpkg -x "$work"/busybox-static_*.deb "$work/bbdeb"
[[ -x $work/bbdeb/bin/busybox ]] || die "busybox-static .deb has no bin/busybox"

# The uncompressed kernel. bzImage = setup code + a compressed ELF vmlinux (+ relocations); Debian
# compresses with xz. qemu boots an ELF with a PVH note directly (CONFIG_PVH=y in Debian's kernel).
extract_vmlinux() {  # the first xz stream of the image that decompresses to an ELF file
  local img=$1 out=$2 off
  for off in $(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$img" | cut -d: -f1 | head -n 5); do
    # (xz stops after the stream, so tail may die of SIGPIPE: judge by the output, not the status)
    tail -c +$((off + 1)) "$img" | xz -dc --single-stream >"$out" 2>/dev/null || true
    [[ $(head -c 4 "$out" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]] && return 0
  done
  return 1
}
# PVH entry = ELF note "Xen" of type XEN_ELFNOTE_PHYS32_ENTRY (18).
if extract_vmlinux "/boot/vmlinuz-$kver" "$work/vmlinux" &&
  readelf -n "$work/vmlinux" 2>/dev/null | grep -Eq 'Xen.*(0x00000012|PHYS32_ENTRY)'; then
  mv "$work/vmlinux" "$work/kernel"
  kernel_kind="vmlinux (uncompressed ELF, PVH boot)"
else
  # Other compression, or no PVH entry: boot the compressed image (about 4 s slower under TCG).
  cp "/boot/vmlinuz-$kver" "$work/kernel"
  kernel_kind="vmlinuz (compressed bzImage)"
fi

# initramfs tree
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,newroot,ctl,mods}
cp "$work/bbdeb/bin/busybox" "$root/bin/busybox"
cp "$here/initramfs-init.sh" "$root/init"
chmod 0755 "$root/init" "$root/bin/busybox"
mknod -m 0600 "$root/dev/console" c 5 1  # the kernel opens it for /init's stdio before devtmpfs

# Modules, in load order: virtio PCI transport, virtio serial ports, 9p over virtio (+ netfs,
# fscache). Anything built into this kernel is skipped by modprobe --show-depends.
mods=(virtio_pci virtio_console 9pnet_virtio 9p)
n=0
declare -A seen=()
for m in "${mods[@]}"; do
  while read -r verb path _; do
    [[ $verb == insmod && -n $path ]] || continue
    [[ -z ${seen[$path]:-} ]] || continue
    seen[$path]=1
    n=$((n + 1))
    base=$(basename "$path")
    dst=$root/mods/$(printf '%02d' "$n")-${base%%.ko*}.ko
    case $path in
      *.ko) cp "$path" "$dst" ;;
      *.ko.xz) xz -dc "$path" >"$dst" ;;
      *.ko.zst) zstd -qdc "$path" >"$dst" ;;
      *.ko.gz) gzip -dc "$path" >"$dst" ;;
      *) die "unknown module file type: $path" ;;
    esac
  done < <(modprobe -S "$kver" --show-depends "$m" 2>&1 || die "modprobe --show-depends $m failed for kernel $kver")
done
((n > 0)) || say "note: every needed module is built into $kver"

(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) >"$work/initramfs.cpio"

mkdir -p "$cache"
mv -f "$work/kernel" "$cache/kernel"
mv -f "$work/initramfs.cpio" "$cache/initramfs.cpio"
echo "$kver" >"$cache/kernel-version"
echo "$want_stamp" >"$stamp"
modnames=""
for f in "$root"/mods/*.ko; do [[ -e $f ]] || continue; f=${f##*/}; f=${f#*-}; modnames+=" ${f%.ko}"; done
say "kernel: $kernel_kind; initramfs: $(stat -c %s "$cache/initramfs.cpio") bytes, $n modules:$modnames"
((print_dir)) && echo "$cache"
exit 0
