#include "tun/gso.hpp"

#include <algorithm>

#include "src/base/bytes.hpp"
#include "src/base/checksum.hpp"

namespace tun::gso {
namespace {

constexpr std::uint8_t kProtoTcp = 6, kProtoUdp = 17;
constexpr std::size_t kIpv4MinHeader = 20, kIpv6Header = 40, kTcpMinHeader = 20;
constexpr std::size_t kTcpChecksumOffset = 16;  // within the TCP header
constexpr std::size_t kUdpChecksumOffset = 6;   // within the UDP header
constexpr std::uint8_t kTcpFin = 0x01, kTcpPsh = 0x08, kTcpCwr = 0x80;

// Where the TCP header starts and the headers end in a GSO super-packet.
struct TcpLayout {
  std::size_t l4 = 0;       // offset of the TCP header = IP header length
  std::size_t headers = 0;  // IP + TCP headers; the payload follows
};

// Parses and checks the IP and TCP headers of a TCPv4 (v6 false) or TCPv6 super-packet; false
// for anything that neither Segmenter::segment() nor segment_local() can segment (see gso.hpp).
bool parse_tcp(std::span<const std::uint8_t> p, bool v6, TcpLayout& out) {
  std::size_t l4;
  if (!v6) {
    if (p.size() < kIpv4MinHeader || p[0] >> 4 != 4) return false;
    l4 = (p[0] & 0x0fu) * 4u;
    if (l4 < kIpv4MinHeader || p[9] != kProtoTcp || base::load_be16(p, 2) != p.size()) return false;
    if ((base::load_be16(p, 6) & 0x3fff) != 0) return false;  // MF or a fragment offset
  } else {
    if (p.size() < kIpv6Header || p[0] >> 4 != 6 || p[6] != kProtoTcp) return false;
    if (base::load_be16(p, 4) != p.size() - kIpv6Header) return false;
    l4 = kIpv6Header;
  }
  if (p.size() < l4 + kTcpMinHeader) return false;
  const std::size_t tcp_len = (p[l4 + 12] >> 4) * 4u;
  if (tcp_len < kTcpMinHeader || p.size() < l4 + tcp_len) return false;
  out = {l4, l4 + tcp_len};
  return true;
}

}  // namespace

bool vnet_hdr_matches(const VnetHdr& hdr, const base::packet::PacketView& packet) {
  // Unknown flag bits are refused rather than masked: no TUN sets them.
  if ((hdr.flags & ~VnetHdr::kKnownFlags) != 0 || hdr.flags == VnetHdr::kKnownFlags) return false;
  if (hdr.is_plain()) return true;
  const std::size_t size = packet.total_len, l4 = packet.l3_header_len;
  if (packet.bytes.size() < size) return false;  // not a view that parse() made
  const bool csum = (hdr.flags & VnetHdr::kNeedsCsum) != 0;
  const std::uint8_t kind = hdr.gso_kind();
  if (kind == VnetHdr::kGsoNone) {
    if (hdr.gso_type != VnetHdr::kGsoNone) return false;  // kGsoEcn alone
  } else {
    if (kind != VnetHdr::kGsoTcpV4 && kind != VnetHdr::kGsoTcpV6) return false;
    if (packet.version != (kind == VnetHdr::kGsoTcpV4 ? 4 : 6) || packet.protocol != kProtoTcp ||
        packet.is_fragment || !csum)
      return false;
    if (size < l4 + kTcpMinHeader) return false;
    const std::size_t tcp_len = (packet.bytes[l4 + 12] >> 4) * 4u;
    const std::size_t headers = l4 + tcp_len;
    if (tcp_len < kTcpMinHeader || headers > size) return false;
    if (hdr.hdr_len < headers || hdr.hdr_len > size) return false;
    if (hdr.gso_size < kMinGsoSize) return false;
    const std::size_t segments = (size - headers + hdr.gso_size - 1) / hdr.gso_size;
    if (segments > kMaxGsoSegments) return false;
  }
  if (csum) {
    if (packet.is_fragment || hdr.csum_start != l4) return false;
    std::size_t field;
    if (packet.protocol == kProtoTcp) {
      field = kTcpChecksumOffset;
    } else if (packet.protocol == kProtoUdp) {
      field = kUdpChecksumOffset;
    } else {
      return false;
    }
    if (hdr.csum_offset != field || l4 + field + 2 > size) return false;
  }
  return true;
}

bool complete_checksum(const VnetHdr& hdr, std::span<std::uint8_t> packet) {
  if ((hdr.flags & VnetHdr::kNeedsCsum) == 0) return true;
  const std::size_t start = hdr.csum_start;
  const std::size_t field = start + hdr.csum_offset;
  if (field + 2 > packet.size()) return false;
  // The field holds the pseudo-header sum, so summing it along with the rest finishes the job.
  std::uint16_t sum = static_cast<std::uint16_t>(~base::checksum::add(packet.subspan(start)));
  if (sum == 0) sum = 0xffff;  // as skb_checksum_help(): 0 means "no checksum" to UDP
  base::store_be16(packet, field, sum);
  return true;
}

bool Segmenter::segment(const VnetHdr& hdr, std::span<const std::uint8_t> packet,
                        const Emit& emit) {
  base::packet::PacketView view;  // a plain header does not need it
  if (!hdr.is_plain() && base::packet::parse(packet, view) != base::packet::ParseError::none)
    return false;
  if (!vnet_hdr_matches(hdr, view)) return false;
  return emit_packets(hdr, packet, 0, [&emit](std::span<const std::uint8_t> p) {
    emit(p);
    return true;
  });
}

bool Segmenter::segment_local(const VnetHdr& hdr, std::span<const std::uint8_t> packet,
                              std::size_t first, const EmitWhile& emit) {
  if (!hdr.is_plain()) {
    base::packet::PacketView view;
    if (base::packet::parse(packet, view) != base::packet::ParseError::none ||
        view.total_len != packet.size())
      return false;
    const std::uint8_t kind = hdr.gso_kind();
    if (kind == VnetHdr::kGsoNone) {
      // Only the checksum to complete; a field inside the IP header would corrupt it.
      if (hdr.gso_type != VnetHdr::kGsoNone || hdr.csum_start < view.l3_header_len) return false;
    } else if (kind != VnetHdr::kGsoTcpV4 && kind != VnetHdr::kGsoTcpV6) {
      return false;
    }
  }
  return emit_packets(hdr, packet, first, emit);
}

bool Segmenter::emit_packets(const VnetHdr& hdr, std::span<const std::uint8_t> packet,
                             std::size_t first, const EmitWhile& emit) {
  if (hdr.is_plain()) {
    if (first == 0) emit(packet);
    return true;
  }
  if (hdr.gso_type == VnetHdr::kGsoNone) {  // only the checksum to complete, in a copy
    if (hdr.csum_start + std::size_t{hdr.csum_offset} + 2 > packet.size()) return false;
    if (first > 0) return true;
    if (buf_.size() < packet.size()) buf_.resize(packet.size());
    const std::span<std::uint8_t> copy(buf_.data(), packet.size());
    std::copy(packet.begin(), packet.end(), copy.begin());
    complete_checksum(hdr, copy);
    emit(copy);
    return true;
  }

  // TCP GSO. parse_tcp() checks what segmenting needs (the lengths in the IP header exactly the
  // packet, no IPv6 extensions, the TCP header inside it); segment() has also checked the header
  // against the packet (vnet_hdr_matches()), segment_local() the GSO type.
  const bool v6 = hdr.gso_kind() == VnetHdr::kGsoTcpV6;
  TcpLayout at;
  if (!parse_tcp(packet, v6, at) || hdr.gso_size == 0) return false;

  // payload < 64 KiB (the IP length fields), so count <= 65535 and first * mss fits.
  const std::size_t payload = packet.size() - at.headers;
  const std::size_t mss = hdr.gso_size;
  const std::size_t count = payload == 0 ? 1 : (payload + mss - 1) / mss;
  if (first >= count) return true;
  const std::size_t largest = at.headers + std::min(mss, payload);
  if (buf_.size() < largest) buf_.resize(largest);
  const std::span<std::uint8_t> seg(buf_.data(), largest);
  std::copy_n(packet.begin(), at.headers, seg.begin());  // fields below are rewritten per segment

  const std::uint16_t ip_id = v6 ? 0 : base::load_be16(packet, 4);
  const std::uint32_t seq = base::load_be32(packet, at.l4 + 4);
  const std::uint8_t tcp_flags = packet[at.l4 + 13];
  // The pseudo-header's addresses (v4: 12..20, v6: 8..40); protocol and length added per segment.
  const std::uint16_t addresses =
      v6 ? base::checksum::add(packet.subspan(8, 32)) : base::checksum::add(packet.subspan(12, 8));
  std::size_t done = first * mss;
  for (auto i = static_cast<std::uint32_t>(first);; i++) {
    const std::size_t chunk = std::min(mss, payload - done);
    const std::size_t size = at.headers + chunk;
    std::copy_n(packet.begin() + static_cast<std::ptrdiff_t>(at.headers + done), chunk,
                seg.begin() + static_cast<std::ptrdiff_t>(at.headers));
    if (v6) {
      base::store_be16(seg, 4, static_cast<std::uint32_t>(size - kIpv6Header));
    } else {
      base::store_be16(seg, 2, static_cast<std::uint32_t>(size));
      base::store_be16(seg, 4, ip_id + i);
      base::store_be16(seg, 10, 0);
      base::store_be16(seg, 10, static_cast<std::uint16_t>(~base::checksum::add(seg.first(at.l4))));
    }
    base::store_be32(seg, at.l4 + 4, seq + static_cast<std::uint32_t>(done));
    std::uint8_t flags = tcp_flags;
    if (i > 0) flags &= static_cast<std::uint8_t>(~kTcpCwr);
    if (done + chunk < payload) flags &= static_cast<std::uint8_t>(~(kTcpFin | kTcpPsh));
    seg[at.l4 + 13] = flags;
    base::store_be16(seg, at.l4 + kTcpChecksumOffset, 0);
    const std::uint32_t pseudo = std::uint32_t{addresses} + kProtoTcp + (size - at.l4);
    const std::span<std::uint8_t> tcp = seg.subspan(at.l4, size - at.l4);
    base::store_be16(seg, at.l4 + kTcpChecksumOffset,
                     static_cast<std::uint16_t>(~base::checksum::add(tcp, pseudo)));
    segments_++;
    done += chunk;
    if (!emit(seg.first(size)) || done >= payload) break;
  }
  return true;
}

}  // namespace tun::gso
