#pragma once
// tun::gso: software GSO and checksum completion for packets read from a TUN with IFF_VNET_HDR
// and TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6. Where such a packet must leave as ordinary packets
// (a TUN without offloads, a raw socket), segment() turns it into what the kernel would have put
// on the wire: fully checksummed packets of at most gso_size payload bytes each.
//
// Every function here is pure (no I/O, no global state), never throws, and checks every access
// against the span it was given: malformed input is refused, never read out of bounds.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "tun/vnet.hpp"

namespace tun::gso {

// When hdr has kNeedsCsum: completes the partial L4 checksum of packet (the bytes after the vnet
// header) in place, as the kernel's skb_checksum_help() does: the 16-bit field at
// csum_start + csum_offset, which holds the pseudo-header sum, is replaced by the complemented
// sum over [csum_start, end) (0 written as 0xffff). Returns false, leaving packet untouched, when
// csum_start + csum_offset + 2 > packet.size(). Without kNeedsCsum: does nothing, returns true.
bool complete_checksum(const VnetHdr& hdr, std::span<std::uint8_t> packet);

// Turns one packet read from a vnet TUN into the ordinary packets it stands for. Reuses its
// buffer from call to call, so it allocates only when a larger segment than ever before comes.
// One Segmenter per thread.
class Segmenter {
 public:
  // Receives each resulting packet: a whole IPv4 or IPv6 packet, valid only during the call.
  using Emit = std::function<void(std::span<const std::uint8_t>)>;

  // packet: the bytes after the vnet header hdr. Calls emit once per resulting packet, in order:
  //  - hdr.is_plain(): packet itself, unchecked.
  //  - no GSO, kNeedsCsum: a copy of packet with the checksum completed (complete_checksum()).
  //  - kGsoTcpV4 / kGsoTcpV6 (kGsoEcn allowed): ceil(payload / gso_size) segments (one if the
  //    payload is empty), payload being what follows the IP and TCP headers as parsed from the
  //    packet (hdr_len is only a hint, see vnet.hpp). Each segment carries a copy of the headers
  //    with: the IPv4 total length / IPv6 payload length of the segment; IPv4 ID = ID + i for
  //    segment i (mod 2^16, as Linux's TSO without fixed IDs) and the IPv4 header checksum
  //    recomputed; the TCP sequence number advanced by the payload bytes before it; CWR kept on
  //    the first segment only, FIN and PSH on the last only; the TCP checksum computed in full.
  //    Everything else (TTL, TOS, DF, flow label, options, urgent pointer) is copied unchanged.
  // Returns false and emits nothing when the packet cannot be handled:
  //  - no GSO, kNeedsCsum: csum_start + csum_offset + 2 > packet.size();
  //  - GSO: a type other than TCPv4/TCPv6 (UFO, USO, ECN alone); gso_size 0; hdr_len beyond the
  //    packet; an IP version that does not match the type; an IPv4 header that is short,
  //    fragmented, not followed by TCP, or whose total length is not packet.size(); an IPv6
  //    header followed by anything but TCP (extension headers are refused) or whose payload
  //    length is not packet.size() - 40 (so no jumbograms); a TCP header that is short or runs
  //    past the packet; kNeedsCsum with csum_start / csum_offset other than those of the TCP
  //    checksum field.
  // emit must be callable and must not call segment() of this Segmenter.
  bool segment(const VnetHdr& hdr, std::span<const std::uint8_t> packet, const Emit& emit);

  // Segments emitted by segment() for GSO packets since construction (a statistic).
  std::uint64_t segments() const { return segments_; }

 private:
  std::vector<std::uint8_t> buf_;
  std::uint64_t segments_ = 0;
};

}  // namespace tun::gso
