#include "src/base/packet.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "src/base/bytes.hpp"

namespace base::packet {
namespace {

bool has_port_header(std::uint8_t protocol) {
  return protocol == IPPROTO_TCP || protocol == IPPROTO_UDP || protocol == IPPROTO_SCTP ||
         protocol == IPPROTO_UDPLITE;
}

void parse_ports(std::span<const std::uint8_t> bytes, PacketView& out) {
  if (out.is_fragment || !has_port_header(out.protocol)) return;
  if (out.total_len < out.l3_header_len + 4u) return;
  const std::uint8_t* l4 = bytes.data() + out.l3_header_len;
  out.src_port = base::load_be16(l4);
  out.dst_port = base::load_be16(l4 + 2);
  out.has_ports = true;
}

ParseError parse_v4(std::span<const std::uint8_t> bytes, PacketView& out) {
  if (bytes.size() < 20) return ParseError::truncated;
  const std::uint8_t* h = bytes.data();
  std::size_t ihl = (h[0] & 0x0f) * 4u;
  std::size_t total = base::load_be16(h + 2);
  if (ihl < 20 || total < ihl) return ParseError::bad_header;
  if (total > bytes.size()) return ParseError::length_mismatch;
  out.version = 4;
  out.l3_header_len = static_cast<std::uint16_t>(ihl);
  out.total_len = static_cast<std::uint32_t>(total);
  out.protocol = h[9];
  std::uint16_t frag = base::load_be16(h + 6);
  out.is_fragment = (frag & 0x3fff) != 0;  // MF set or offset non-zero
  std::memcpy(out.src.data(), h + 12, 4);
  std::memcpy(out.dst.data(), h + 16, 4);
  parse_ports(bytes, out);
  return ParseError::none;
}

bool is_extension_header(std::uint8_t next) {
  return next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS ||
         next == IPPROTO_FRAGMENT;
}

ParseError parse_v6(std::span<const std::uint8_t> bytes, PacketView& out) {
  if (bytes.size() < 40) return ParseError::truncated;
  const std::uint8_t* h = bytes.data();
  std::size_t total = 40u + base::load_be16(h + 4);
  if (total > bytes.size()) return ParseError::length_mismatch;
  out.version = 6;
  out.total_len = static_cast<std::uint32_t>(total);
  std::memcpy(out.src.data(), h + 8, 16);
  std::memcpy(out.dst.data(), h + 24, 16);
  // Walk a bounded number of extension headers to find the upper-layer protocol.
  std::uint8_t next = h[6];
  std::size_t offset = 40;
  for (int i = 0; i < 8 && is_extension_header(next); ++i) {
    if (offset + 8 > total) return ParseError::truncated;
    const std::uint8_t* ext = h + offset;
    if (next == IPPROTO_FRAGMENT) {
      out.is_fragment = out.is_fragment || (base::load_be16(ext + 2) & 0xfff9) != 0;
      next = ext[0];
      offset += 8;
    } else {
      next = ext[0];
      offset += (ext[1] + 1u) * 8u;
    }
  }
  if (offset > total) return ParseError::truncated;
  out.protocol = next;
  out.l3_header_len = static_cast<std::uint16_t>(offset);
  parse_ports(bytes, out);
  return ParseError::none;
}

}  // namespace

const char* to_string(ParseError error) {
  switch (error) {
    case ParseError::none:
      return "none";
    case ParseError::empty:
      return "empty";
    case ParseError::bad_version:
      return "bad_version";
    case ParseError::truncated:
      return "truncated";
    case ParseError::bad_header:
      return "bad_header";
    case ParseError::length_mismatch:
      return "length_mismatch";
  }
  return "unknown";
}

ParseError parse(std::span<const std::uint8_t> bytes, PacketView& out) {
  out = PacketView{};
  out.bytes = bytes;
  if (bytes.empty()) return ParseError::empty;
  switch (bytes[0] >> 4) {
    case 4:
      return parse_v4(bytes, out);
    case 6:
      return parse_v6(bytes, out);
    default:
      return ParseError::bad_version;
  }
}

std::string address_to_string(std::uint8_t version, const std::uint8_t* addr) {
  char text[INET6_ADDRSTRLEN] = "?";
  inet_ntop(version == 4 ? AF_INET : AF_INET6, addr, text, sizeof text);
  return text;
}

FlowKey FlowKey::of(const PacketView& view) {
  FlowKey key;
  key.version = view.version;
  key.protocol = view.protocol;
  key.src = view.src;
  key.dst = view.dst;
  if (view.has_ports) {
    key.src_port = view.src_port;
    key.dst_port = view.dst_port;
  }
  return key;
}

std::size_t FlowKey::hash() const {
  // FNV-1a over the fields; flows are few compared to packets, and this is one pass over 38 bytes.
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const std::uint8_t* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  };
  mix(src.data(), src.size());
  mix(dst.data(), dst.size());
  std::uint8_t rest[6] = {0, 0, 0, 0, version, protocol};
  base::store_be16(rest, src_port);
  base::store_be16(rest + 2, dst_port);
  mix(rest, sizeof rest);
  return static_cast<std::size_t>(h);
}

std::string FlowKey::to_string() const {
  std::string s = address_to_string(version, src.data());
  if (src_port || dst_port) s += ":" + std::to_string(src_port);
  s += " -> " + address_to_string(version, dst.data());
  if (src_port || dst_port) s += ":" + std::to_string(dst_port);
  s += " proto " + std::to_string(protocol);
  return s;
}

}  // namespace base::packet
