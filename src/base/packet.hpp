#pragma once
// PacketView: a zero-copy parse of an IPv4/IPv6 packet as read from the TUN, and FlowKey, the
// 5-tuple that groups packets into flows.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

namespace base::packet {

enum class ParseError : std::uint8_t {
  none,
  empty,
  bad_version,     // neither 4 nor 6
  truncated,       // shorter than its own header says
  bad_header,      // IHL < 5, total length < header length
  length_mismatch  // total/payload length larger than the bytes we have
};
const char* to_string(ParseError error);

// Parses what the gateway needs; never reads past bytes. Transport ports are present only for
// TCP/UDP/SCTP/UDP-Lite in the first fragment whose L4 header is complete.
struct PacketView {
  std::uint8_t version = 0;   // 4 or 6
  std::uint8_t protocol = 0;  // IPv4 protocol / IPv6 upper-layer header after known extensions
  bool has_ports = false;
  bool is_fragment = false;
  std::uint16_t src_port = 0, dst_port = 0;   // host order
  std::uint16_t l3_header_len = 0;            // IP header incl. IPv6 extension headers walked
  std::uint32_t total_len = 0;                // length from the IP header (<= bytes.size())
  std::array<std::uint8_t, 16> src{}, dst{};  // v4 addresses in the first 4 bytes
  std::span<const std::uint8_t> bytes;        // the whole packet as given

  std::size_t addr_len() const { return version == 4 ? 4 : 16; }
};

ParseError parse(std::span<const std::uint8_t> bytes, PacketView& out);

std::string address_to_string(std::uint8_t version, const std::uint8_t* addr);

// The flow a packet belongs to. Packets without ports are grouped by addresses and protocol.
struct FlowKey {
  std::array<std::uint8_t, 16> src{}, dst{};
  std::uint16_t src_port = 0, dst_port = 0;
  std::uint8_t version = 0, protocol = 0;

  static FlowKey of(const PacketView& view);
  bool operator==(const FlowKey&) const = default;
  std::size_t hash() const;
  std::string to_string() const;
};

}  // namespace base::packet

template <>
struct std::hash<base::packet::FlowKey> {
  std::size_t operator()(const base::packet::FlowKey& key) const { return key.hash(); }
};
