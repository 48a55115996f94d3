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

#include "src/base/packet.hpp"
#include "tun/vnet.hpp"

namespace tun::gso {

// True when hdr is a header that Linux hands out of a TUN (IFF_VNET_HDR, TUN_F_CSUM |
// TUN_F_TSO4 | TUN_F_TSO6) in front of packet, a parsed IPv4 / IPv6 packet of packet.total_len
// bytes (packet.bytes holds at least that many). Only such headers may reach a kernel or
// Segmenter::segment(); everything else is refused:
//  - flag bits other than kNeedsCsum and kDataValid (refused, not masked: no TUN sets them, so
//    the header was not made by one), and kNeedsCsum together with kDataValid (a TUN sets one
//    or the other);
//  - kGsoEcn without a TCP GSO type; any GSO type but kGsoTcpV4 / kGsoTcpV6 (UFO, USO);
//  - TCP GSO: an IP version other than the type's; an L4 protocol other than TCP; a fragment;
//    no kNeedsCsum; a TCP header that is short or runs past the packet; hdr_len below the IP +
//    TCP headers or beyond the packet (anything in between is fine: Linux sets it to the skb's
//    linear part); gso_size below kMinGsoSize; more than kMaxGsoSegments segments, that is
//    ceil(payload / gso_size) with the payload what follows the TCP header;
//  - kNeedsCsum: a fragment; csum_start other than the L4 header's offset
//    (packet.l3_header_len); csum_offset other than that of the checksum field of TCP (16) or
//    UDP (6), and any other L4 protocol; a checksum field that ends past the packet.
// Not looked at, as the kernel ignores them: hdr_len and gso_size without GSO, csum_start and
// csum_offset without kNeedsCsum. For a plain header (hdr.is_plain()) only the flags count and
// packet is not looked at (it may be a default-constructed view).
bool vnet_hdr_matches(const VnetHdr& hdr, const base::packet::PacketView& packet);

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
  //  - hdr.is_plain(): packet itself, unchecked (only the header's flags are).
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
  //  - every header that vnet_hdr_matches() refuses for packet, and with a header that is not
  //    plain, a packet that base::packet::parse() refuses;
  //  - GSO: an IPv4 header whose total length is not packet.size(); an IPv6 header followed by
  //    an extension header or whose payload length is not packet.size() - 40 (so no
  //    jumbograms).
  // emit must be callable and must not call segment() of this Segmenter.
  bool segment(const VnetHdr& hdr, std::span<const std::uint8_t> packet, const Emit& emit);

  // Segments emitted by segment() for GSO packets since construction (a statistic).
  std::uint64_t segments() const { return segments_; }

 private:
  std::vector<std::uint8_t> buf_;
  std::uint64_t segments_ = 0;
};

}  // namespace tun::gso
