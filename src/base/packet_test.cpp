#include "src/base/packet.hpp"

#include <doctest/doctest.h>

#include <unordered_set>

#include "src/base/bytes.hpp"
#include "src/base/test_packets.hpp"

using base::packet::PacketView;
using base::packet::ParseError;

TEST_CASE("packet: IPv4 TCP is parsed with ports and addresses") {
  auto bytes = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_TCP, 40000, 80);
  PacketView view;
  REQUIRE(base::packet::parse(bytes, view) == ParseError::none);
  CHECK(view.version == 4);
  CHECK(view.protocol == IPPROTO_TCP);
  CHECK(view.has_ports);
  CHECK(view.src_port == 40000);
  CHECK(view.dst_port == 80);
  CHECK(view.l3_header_len == 20);
  CHECK(view.total_len == bytes.size());
  CHECK(base::packet::address_to_string(4, view.dst.data()) == "10.2.0.2");
}

TEST_CASE("packet: IPv6 UDP is parsed, extension headers are walked") {
  auto bytes = base::test_packets::ipv6("fd01::2", "fd02::2", IPPROTO_UDP, 5353, 53);
  PacketView view;
  REQUIRE(base::packet::parse(bytes, view) == ParseError::none);
  CHECK(view.version == 6);
  CHECK(view.protocol == IPPROTO_UDP);
  CHECK(view.dst_port == 53);
  CHECK(base::packet::address_to_string(6, view.src.data()) == "fd01::2");

  // Insert an 8-byte destination-options header in front of the UDP header.
  std::vector<std::uint8_t> ext = bytes;
  ext.insert(ext.begin() + 40, {IPPROTO_UDP, 0, 1, 4, 0, 0, 0, 0});
  ext[6] = IPPROTO_DSTOPTS;
  base::store_be16(ext, 4, static_cast<std::uint16_t>(ext.size() - 40));
  REQUIRE(base::packet::parse(ext, view) == ParseError::none);
  CHECK(view.protocol == IPPROTO_UDP);
  CHECK(view.l3_header_len == 48);
  CHECK(view.dst_port == 53);
}

TEST_CASE("packet: malformed packets are refused with a reason") {
  PacketView view;
  CHECK(base::packet::parse({}, view) == ParseError::empty);
  std::vector<std::uint8_t> junk = {0x20, 1, 2, 3};
  CHECK(base::packet::parse(junk, view) == ParseError::bad_version);

  auto v4 = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_UDP, 1, 2);
  CHECK(base::packet::parse(std::span(v4).first(19), view) == ParseError::truncated);
  auto bad_ihl = v4;
  bad_ihl[0] = 0x44;  // IHL 4 < 5
  CHECK(base::packet::parse(bad_ihl, view) == ParseError::bad_header);
  auto long_total = v4;
  long_total[3] = static_cast<std::uint8_t>(long_total[3] + 10);  // claims more than we have
  CHECK(base::packet::parse(long_total, view) == ParseError::length_mismatch);

  auto v6 = base::test_packets::ipv6("fd01::2", "fd02::2", IPPROTO_UDP, 1, 2);
  CHECK(base::packet::parse(std::span(v6).first(39), view) == ParseError::truncated);
  auto v6_long = v6;
  v6_long[5] = static_cast<std::uint8_t>(v6_long[5] + 1);
  CHECK(base::packet::parse(v6_long, view) == ParseError::length_mismatch);
}

TEST_CASE(
    "packet: trailing bytes beyond the IP length are tolerated, total_len says where it ends") {
  auto v4 = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_UDP, 1, 2);
  std::size_t real = v4.size();
  v4.resize(real + 6, 0xee);
  PacketView view;
  REQUIRE(base::packet::parse(v4, view) == ParseError::none);
  CHECK(view.total_len == real);
}

TEST_CASE("packet: fragments carry no ports, so all fragments of a datagram share one flow") {
  auto first = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_UDP, 1000, 2000);
  first[6] = 0x20;  // MF
  auto later = first;
  later[6] = 0x00;
  later[7] = 0x10;  // offset 16*8
  PacketView a, b;
  REQUIRE(base::packet::parse(first, a) == ParseError::none);
  REQUIRE(base::packet::parse(later, b) == ParseError::none);
  CHECK(a.is_fragment);
  CHECK_FALSE(a.has_ports);
  CHECK(base::packet::FlowKey::of(a) == base::packet::FlowKey::of(b));
}

TEST_CASE("packet: flow keys separate 5-tuples and hash consistently") {
  std::unordered_set<base::packet::FlowKey> keys;
  for (std::uint16_t port = 1; port <= 100; ++port) {
    auto bytes = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_TCP, port, 80);
    PacketView view;
    REQUIRE(base::packet::parse(bytes, view) == ParseError::none);
    keys.insert(base::packet::FlowKey::of(view));
    keys.insert(base::packet::FlowKey::of(view));  // the same packet twice: one flow
  }
  CHECK(keys.size() == 100);
  auto icmp = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_ICMP, 0, 0);
  PacketView view;
  REQUIRE(base::packet::parse(icmp, view) == ParseError::none);
  CHECK_FALSE(view.has_ports);
  CHECK(base::packet::FlowKey::of(view).to_string() == "10.1.0.2 -> 10.2.0.2 proto 1");
}
