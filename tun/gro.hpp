#pragma once
// tun::gro: software GRO for packets written to a TUN with IFF_VNET_HDR. Consecutive TCP
// segments of one flow become one GSO super-packet (as a NIC's receive offload would make them),
// so the kernel takes one write and one socket buffer instead of one per segment: less CPU, and
// the receiving TCP, which accounts its buffer by skb size, grows its window as for a NIC with
// GRO instead of a packet at a time.
//
// What joins: in-order TCP data segments of one flow (same addresses, ports, IP fields, ACK,
// window and TCP options, e.g. the same timestamps), IPv4 IDs counting up by one, each with
// valid IP and TCP checksums, ACK alone or ACK+PSH (PSH ends the super-packet), every segment
// but the last exactly as long as the first, which carries at least kMinGsoSize payload bytes
// (tun/vnet.hpp: the least gso_size we accept). Anything else is written as it came. The super-
// packet stands for exactly the segments it was made of: tun::gso::Segmenter turns it back into
// them byte for byte (the unit tests check that).
//
// Pure (no I/O); the caller writes what take() returns.

#include <cstddef>
#include <cstdint>
#include <span>

#include "tun/packet_buf.hpp"

namespace tun::gro {

class Coalescer {
 public:
  enum class Add {
    joined,   // the packet is part of the pending super-packet (copied)
    flush,    // it cannot join what is pending: take() that first, then add it again
    refused,  // it cannot be coalesced at all: take() what is pending, then write it as it is
  };
  Add add(std::span<const std::uint8_t> packet);

  // add() as a writer into the TUN uses it: what is pending and cannot go before packet in one
  // super-packet is handed to write() first. True: packet is pending now. False: nothing is
  // pending; write packet as it is.
  template <typename Write>
  bool offer(std::span<const std::uint8_t> packet, Write&& write) {
    Add added = add(packet);
    if (added == Add::flush) {
      write(*take());
      added = add(packet);
    }
    if (added == Add::joined) return true;
    if (pending()) write(*take());
    return false;
  }

  bool pending() const { return count_ > 0; }
  // The pending packet with its virtio_net_hdr in front (a super-packet, or the one packet
  // as it came with an empty header), valid until the next add(); nullptr if nothing is
  // pending. Nothing is pending afterwards.
  const PacketBuf* take();

  std::uint64_t super_packets() const { return super_packets_; }  // taken with 2+ segments
  std::uint64_t segments() const { return segments_; }            // in those

 private:
  PacketBuf buf_;
  std::size_t count_ = 0;  // segments pending
  bool v6_ = false, closed_ = false;
  std::size_t l4_ = 0, headers_ = 0, mss_ = 0, last_payload_ = 0;
  std::uint32_t next_seq_ = 0;
  std::uint16_t next_id_ = 0;
  std::uint8_t flags_ = 0;  // TCP flags of the last segment
  std::uint64_t super_packets_ = 0, segments_ = 0;
};

}  // namespace tun::gro
