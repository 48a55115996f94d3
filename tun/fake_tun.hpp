#pragma once
// FakeTun: an in-memory tun::Device for unit tests that run without root. Packets injected with
// inject() come out of read() in order; packets given to write() are kept for take_written().

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <vector>

#include "tun/device.hpp"

namespace tun {

class FakeTun final : public Device {
 public:
  explicit FakeTun(std::string name = "fake0", int mtu = 1500);

  // Queues a copy of packet for read(). Throws std::length_error unless it has 1 to
  // PacketBuf::kCapacity - kHeadroom bytes: a real TUN never yields an empty packet either.
  void inject(std::span<const std::uint8_t> packet);
  // Packets injected but not read yet.
  std::size_t pending() const { return inbound_.size(); }

  // Returns every packet accepted by write() since the last call, oldest first, and forgets them.
  std::vector<std::vector<std::uint8_t>> take_written();
  // The next n packets given to write() are refused as the kernel would refuse them: counted in
  // stats().write_errors and not kept.
  void refuse_next_writes(std::size_t n) { refuse_writes_ = n; }

  // Device. read() moves up to bufs.size() queued packets into bufs (each at default headroom).
  // write() keeps each non-empty packet; empty ones are refused like LinuxTun refuses them.
  std::size_t read(std::span<PacketBuf> bufs) override;
  std::size_t write(std::span<const PacketBuf* const> packets) override;
  int fd() const override { return -1; }
  int mtu() const override { return mtu_; }
  const std::string& name() const override { return name_; }
  const DeviceStats& stats() const override { return stats_; }

  void set_mtu(int mtu) { mtu_ = mtu; }
  // Pretend to be a TUN with IFF_VNET_HDR: then injected and written packets carry the 10-byte
  // virtio-net header in front (the fake does not check it).
  void set_vnet_hdr(bool on) { vnet_hdr_ = on; }
  bool vnet_hdr() const override { return vnet_hdr_; }

 private:
  bool vnet_hdr_ = false;
  std::string name_;
  int mtu_;
  std::deque<std::vector<std::uint8_t>> inbound_;
  std::vector<std::vector<std::uint8_t>> written_;
  std::size_t refuse_writes_ = 0;
  DeviceStats stats_;
};

}  // namespace tun
