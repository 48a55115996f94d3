#pragma once
// LinuxTun: a tun::Device over a Linux TUN interface (/dev/net/tun, IFF_TUN | IFF_NO_PI), so
// every read() or write() carries one bare IPv4 or IPv6 packet. The descriptor is non-blocking
// and close-on-exec; neither read() nor write() ever blocks or throws.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "tun/device.hpp"

namespace tun {

struct LinuxTunOptions {
  // IFF_VNET_HDR: a 10-byte virtio_net_hdr in front of each packet, and TUNSETOFFLOAD with
  // TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 so the kernel hands over GSO super-packets (up to 64 KB)
  // with partial checksums. If the kernel refuses the offloads, the header stays (always plain)
  // and offloads() says false.
  bool vnet_hdr = false;
};

// What DeviceStats has no field for. Each failure is also visible in DeviceStats where it fits
// (a refused write counts in write_errors whatever the reason).
struct LinuxTunErrors {
  std::uint64_t read_errors = 0;        // read(2) failed with other than EAGAIN/EINTR
  std::uint64_t empty_reads = 0;        // read(2) returned a packet of 0 bytes
  std::uint64_t write_would_block = 0;  // write(2) said EAGAIN: the packet was dropped
  std::uint64_t empty_writes = 0;       // write() was given a 0-byte packet: dropped
  int last_read_errno = 0;              // errno of the latest read error, 0 if none yet
  int last_write_errno = 0;             // errno of the latest refused write, 0 if none yet
};

class LinuxTun final : public Device {
 public:
  // Attaches to the TUN interface `name`, creating it if absent (it then vanishes again when this
  // object is destroyed, unless someone made it persistent). An empty name lets the kernel pick
  // one ("tun%d"); name() tells which. Sets the interface MTU to `mtu`; addresses, routes and
  // link state are the caller's business (see tun::Netlink).
  // Throws std::invalid_argument for a name longer than IFNAMSIZ - 1 or options it cannot honour,
  // and std::system_error naming the device for any failing system call (no /dev/net/tun, no
  // CAP_NET_ADMIN, an existing interface of another kind, an MTU the kernel refuses).
  static std::unique_ptr<LinuxTun> open(const std::string& name, int mtu,
                                        const LinuxTunOptions& options = {});
  ~LinuxTun() override;
  LinuxTun(const LinuxTun&) = delete;
  LinuxTun& operator=(const LinuxTun&) = delete;

  // Device. read() reads packets into bufs until the kernel has none left (EAGAIN) or bufs is
  // full; a read error ends the batch and is counted in errors(). write() writes each packet
  // once; a packet the kernel refuses (including EAGAIN) is counted and skipped.
  std::size_t read(std::span<PacketBuf> bufs) override;
  std::size_t write(std::span<const PacketBuf* const> packets) override;
  int fd() const override { return fd_; }
  int mtu() const override { return mtu_; }
  const std::string& name() const override { return name_; }
  const DeviceStats& stats() const override { return stats_; }

  const LinuxTunErrors& errors() const { return errors_; }
  bool vnet_hdr() const override { return vnet_hdr_; }
  // True when the kernel accepted TSO/checksum offloads (only with vnet_hdr).
  bool offloads() const { return offloads_; }

 private:
  LinuxTun(int fd, std::string name, int mtu) : fd_(fd), name_(std::move(name)), mtu_(mtu) {}

  int fd_;
  std::string name_;
  int mtu_;
  bool vnet_hdr_ = false;
  bool offloads_ = false;
  DeviceStats stats_;
  LinuxTunErrors errors_;
};

}  // namespace tun
