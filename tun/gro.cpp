#include "tun/gro.hpp"

#include <algorithm>
#include <cstring>

#include "src/base/bytes.hpp"
#include "src/base/checksum.hpp"
#include "tun/vnet.hpp"

namespace tun::gro {
namespace {

constexpr std::uint8_t kProtoTcp = 6;
constexpr std::size_t kIpv4MinHeader = 20, kIpv6Header = 40, kTcpMinHeader = 20;
constexpr std::size_t kTcpChecksumOffset = 16;
constexpr std::uint8_t kTcpAck = 0x10, kTcpPsh = 0x08;
constexpr std::size_t kMaxSuperPacket = 65535;  // IPv4 total length; IPv6 stays below its limit

// A TCP segment's layout, or l4 == 0 when it is none we coalesce.
struct Segment {
  bool v6 = false;
  std::size_t l4 = 0, headers = 0, payload = 0;
};

// The sum of the TCP pseudo-header (addresses, protocol, TCP length), folded.
std::uint16_t pseudo_sum(std::span<const std::uint8_t> p, const Segment& s, std::size_t tcp_len) {
  return base::checksum::add(s.v6 ? p.subspan(8, 32) : p.subspan(12, 8),
                             kProtoTcp + static_cast<std::uint32_t>(tcp_len));
}

// Parses p as an unfragmented IPv4 or IPv6 (no extension headers) TCP segment with payload,
// flags ACK or ACK+PSH, and valid checksums.
Segment parse(std::span<const std::uint8_t> p) {
  Segment s;
  if (p.size() < kIpv4MinHeader) return {};
  std::size_t l4;
  if (p[0] >> 4 == 4) {
    l4 = (p[0] & 0x0fu) * 4u;
    if (l4 < kIpv4MinHeader || p[9] != kProtoTcp || base::load_be16(p, 2) != p.size()) return {};
    if ((base::load_be16(p, 6) & 0x3fff) != 0) return {};  // MF or a fragment offset
    if (p.size() < l4 || base::checksum::add(p.first(l4)) != 0xffff) return {};
  } else if (p[0] >> 4 == 6) {
    s.v6 = true;
    if (p.size() < kIpv6Header || p[6] != kProtoTcp ||
        base::load_be16(p, 4) != p.size() - kIpv6Header)
      return {};
    l4 = kIpv6Header;
  } else {
    return {};
  }
  if (p.size() < l4 + kTcpMinHeader) return {};
  const std::size_t tcp_len = (p[l4 + 12] >> 4) * 4u;
  if (tcp_len < kTcpMinHeader || p.size() <= l4 + tcp_len)
    return {};  // no payload: nothing to join
  const std::uint8_t flags = p[l4 + 13];
  if (flags != kTcpAck && flags != (kTcpAck | kTcpPsh)) return {};
  if (base::load_be16(p, l4 + 18) != 0) return {};  // an urgent pointer
  if (base::checksum::add(p.subspan(l4), pseudo_sum(p, s, p.size() - l4)) != 0xffff) return {};
  s.l4 = l4;
  s.headers = l4 + tcp_len;
  s.payload = p.size() - s.headers;
  return s;
}

bool same(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b, std::size_t from,
          std::size_t to) {
  return std::memcmp(a.data() + from, b.data() + from, to - from) == 0;
}

}  // namespace

Coalescer::Add Coalescer::add(std::span<const std::uint8_t> packet) {
  const Segment s = parse(packet);
  if (s.l4 == 0) return Add::refused;
  if (count_ == 0) {
    if (packet[s.l4 + 13] & kTcpPsh) return Add::refused;  // would end at once: nothing to gain
    // Its payload becomes the super-packet's gso_size: at least kMinGsoSize (vnet.hpp).
    if (s.payload < kMinGsoSize) return Add::refused;
    buf_.assign(packet);
    count_ = 1;
    v6_ = s.v6;
    closed_ = false;
    l4_ = s.l4;
    headers_ = s.headers;
    mss_ = last_payload_ = s.payload;
    next_seq_ = base::load_be32(packet, s.l4 + 4) + static_cast<std::uint32_t>(s.payload);
    next_id_ = s.v6 ? 0 : static_cast<std::uint16_t>(base::load_be16(packet, 4) + 1);
    flags_ = packet[s.l4 + 13];
    return Add::joined;
  }
  const std::span<const std::uint8_t> first = buf_.data();
  const bool fits = !closed_ && last_payload_ == mss_ && s.payload <= mss_ &&
                    buf_.size() + s.payload <= kMaxSuperPacket;
  bool joins = fits && s.v6 == v6_ && s.l4 == l4_ && s.headers == headers_;
  if (joins && !v6_) {
    // Version, IHL, TOS; flags, TTL, protocol; addresses and options. Not: length, ID, checksum.
    joins = same(first, packet, 0, 2) && same(first, packet, 6, 10) &&
            same(first, packet, 12, l4_) && base::load_be16(packet, 4) == next_id_;
  } else if (joins) {
    // Version, traffic class, flow label; next header, hop limit, addresses. Not: payload length.
    joins = same(first, packet, 0, 4) && same(first, packet, 6, kIpv6Header);
  }
  // Ports; (sequence number: the next one); acknowledgement, data offset; (flags); window;
  // (checksum); urgent pointer and options.
  joins = joins && same(first, packet, l4_, l4_ + 4) &&
          base::load_be32(packet, l4_ + 4) == next_seq_ && same(first, packet, l4_ + 8, l4_ + 13) &&
          same(first, packet, l4_ + 14, l4_ + 16) && same(first, packet, l4_ + 18, headers_);
  if (!joins) return Add::flush;
  const std::size_t at = buf_.size();
  buf_.set_size(at + s.payload);
  std::memcpy(buf_.data().data() + at, packet.data() + s.headers, s.payload);
  ++count_;
  last_payload_ = s.payload;
  next_seq_ += static_cast<std::uint32_t>(s.payload);
  ++next_id_;
  flags_ = packet[s.l4 + 13];
  closed_ = (flags_ & kTcpPsh) != 0;
  return Add::joined;
}

const PacketBuf* Coalescer::take() {
  if (count_ == 0) return nullptr;
  VnetHdr hdr;
  if (count_ > 1) {
    const std::span<std::uint8_t> p = buf_.data();
    if (v6_) {
      base::store_be16(p, 4, static_cast<std::uint32_t>(p.size() - kIpv6Header));
    } else {
      base::store_be16(p, 2, static_cast<std::uint32_t>(p.size()));
      base::store_be16(p, 10, 0);
      base::store_be16(p, 10, static_cast<std::uint16_t>(~base::checksum::add(p.first(l4_))));
    }
    p[l4_ + 13] = flags_;
    Segment s{v6_, l4_, headers_, p.size() - headers_};
    base::store_be16(p, l4_ + kTcpChecksumOffset,
                     pseudo_sum(p, s, p.size() - l4_));  // partial: the kernel completes it
    hdr.flags = VnetHdr::kNeedsCsum;
    hdr.gso_type = v6_ ? VnetHdr::kGsoTcpV6 : VnetHdr::kGsoTcpV4;
    hdr.hdr_len = static_cast<std::uint16_t>(headers_);
    hdr.gso_size = static_cast<std::uint16_t>(mss_);
    hdr.csum_start = static_cast<std::uint16_t>(l4_);
    hdr.csum_offset = static_cast<std::uint16_t>(kTcpChecksumOffset);
    ++super_packets_;
    segments_ += count_;
  }
  hdr.store(buf_.push_front(kVnetHdrSize));
  count_ = 0;
  return &buf_;
}

}  // namespace tun::gro
