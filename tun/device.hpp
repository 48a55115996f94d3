#pragma once
// tun::Device: the packet edge of the gateway. Batch-shaped so that implementations may read or
// write several packets per call; each packet sits in a PacketBuf with headroom in front.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "tun/packet_buf.hpp"

namespace tun {

struct DeviceStats {
  std::uint64_t read_packets = 0, read_bytes = 0;
  std::uint64_t written_packets = 0, written_bytes = 0;
  std::uint64_t write_errors = 0;  // packets the kernel refused (counted, logged once per kind)
};

class Device {
 public:
  virtual ~Device() = default;

  // Reads up to bufs.size() packets without blocking into bufs[0..n) (each reset() first) and
  // returns n; 0 when nothing is ready.
  virtual std::size_t read(std::span<PacketBuf> bufs) = 0;
  // Writes every packet; returns how many were accepted. A packet the kernel refuses is counted
  // in stats().write_errors and skipped, it never stalls the ones after it.
  virtual std::size_t write(std::span<const PacketBuf* const> packets) = 0;

  // With a virtio-net header (IFF_VNET_HDR): every packet read starts with a 10-byte tun::VnetHdr
  // and may be a GSO super-packet; every packet written must start with one.
  virtual bool vnet_hdr() const { return false; }

  // A descriptor that polls readable when read() has packets, or -1 (fakes).
  virtual int fd() const = 0;
  virtual int mtu() const = 0;
  virtual const std::string& name() const = 0;
  virtual const DeviceStats& stats() const = 0;
};

}  // namespace tun
