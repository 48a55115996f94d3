#pragma once
// tun::gso: software GSO and checksum completion for packets read from a TUN with IFF_VNET_HDR
// and TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6. Where such a packet must leave as ordinary packets
// (a TUN without offloads, a raw socket, a peer that would refuse its header), the Segmenter
// turns it into what the kernel would have put on the wire: fully checksummed packets of at most
// gso_size payload bytes each. Two entry points, one implementation: segment() for a header that
// came from a peer (only what vnet_hdr_matches() accepts), segment_local() for a header that our
// own kernel made (anything it can hand out, only the structure checked).
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
// bytes (packet.bytes holds at least that many), for the common cases: a TCP super-packet and a
// partial TCP or UDP checksum in the packet's own L4 header. This is what a receiver accepts
// from a peer: only such headers may reach its kernel or Segmenter::segment(); everything else
// is refused. Our own kernel hands out more than this (a partial checksum of an encapsulated
// inner header or of another protocol; gso_size below kMinGsoSize, as TCP allows an MSS below
// 64): a sender completes such packets with Segmenter::segment_local() before they leave, so
// that what it sends passes here. Refused:
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
  // emit must be callable and must not call segment() or segment_local() of this Segmenter.
  bool segment(const VnetHdr& hdr, std::span<const std::uint8_t> packet, const Emit& emit);

  // Like Emit; returning false stops: no further packet is built or emitted.
  using EmitWhile = std::function<bool(std::span<const std::uint8_t>)>;

  // segment() for a packet read from our own TUN, whose header our kernel made and so is not
  // held to vnet_hdr_matches(): the packets emitted are those segment() makes (the same bytes
  // for every header both accept), but only what the work itself needs is checked:
  //  - hdr.is_plain(): packet itself, unchecked.
  //  - gso_type kGsoNone with kNeedsCsum: packet parses (base::packet::parse()) with an IP
  //    length of exactly packet.size(), and the checksum field lies after the IP header:
  //    l3_header_len <= csum_start and csum_start + csum_offset + 2 <= packet.size(); any L4
  //    protocol, any csum_start / csum_offset within those bounds (an inner header of an
  //    encapsulated packet). Emits a copy with the checksum completed (complete_checksum()).
  //  - kGsoTcpV4 / kGsoTcpV6 (kGsoEcn allowed): packet parses, and what segment() requires of
  //    the packet beyond vnet_hdr_matches() holds (IP length exactly the packet, no IPv6
  //    extension header, a TCP header inside the packet, no fragment); gso_size >= 1 (no lower
  //    bound beyond that, and no segment limit but the one the size implies); kNeedsCsum,
  //    hdr_len and csum_start / csum_offset are not looked at (each segment's checksum is
  //    computed in full). The IP length fields bound the payload below 64 KiB, so the work is
  //    bounded: at most 65535 segments, each built in a buffer of the headers plus gso_size
  //    bytes, nothing read outside packet.
  //  - flag bits other than kNeedsCsum are ignored (kDataValid only means something on write).
  //  - anything else is refused: other GSO types (UFO, USO, unknown), kGsoEcn without a TCP
  //    type, a packet that parse() refuses.
  // first: the packets before the first-th (counting from 0, in the order emitted) are skipped
  // without being built, so a caller that could send only some of them resumes where it
  // stopped; nothing is emitted when first >= their number. Emits in order until emit returns
  // false. Returns false and emits nothing when refused, else true (also when emit stopped).
  // emit must not call segment() or segment_local() of this Segmenter.
  bool segment_local(const VnetHdr& hdr, std::span<const std::uint8_t> packet, std::size_t first,
                     const EmitWhile& emit);

  // Segments emitted by segment() and segment_local() for GSO packets since construction (a
  // statistic).
  std::uint64_t segments() const { return segments_; }

 private:
  // What both entry points share, after their own checks: emits the packets from the first-th
  // on while emit returns true; false (nothing emitted) when the packet's structure refuses.
  bool emit_packets(const VnetHdr& hdr, std::span<const std::uint8_t> packet, std::size_t first,
                    const EmitWhile& emit);

  std::vector<std::uint8_t> buf_;
  std::uint64_t segments_ = 0;
};

}  // namespace tun::gso
