#include "src/gateway/icmp_reply.hpp"

#include "src/base/bytes.hpp"
#include "src/base/checksum.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "src/base/test_packets.hpp"

using base::packet::PacketView;
using base::packet::ParseError;

namespace {

using Bytes = std::vector<std::uint8_t>;

std::array<std::uint8_t, 16> addr(int family, const std::string& text) {
  std::array<std::uint8_t, 16> a{};
  REQUIRE(inet_pton(family, text.c_str(), a.data()) == 1);
  return a;
}

// Reference checksum written independently of base::checksum::internet: the checksum field must
// be zeroed by the caller.
std::uint16_t ref_checksum(const Bytes& data) {
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < data.size(); ++i) sum += (i % 2 == 0) ? data[i] * 256u : data[i];
  while (sum > 0xffff) sum = (sum >> 16) + (sum & 0xffff);
  return static_cast<std::uint16_t>(~sum);
}

// Checks the stored 16-bit checksum at `at` (relative to `data`) by recomputing with it zeroed.
void check_checksum(Bytes data, std::size_t at, std::size_t pseudo_len = 0) {
  std::uint16_t stored = base::load_be16(data, pseudo_len + at);
  data[pseudo_len + at] = data[pseudo_len + at + 1] = 0;
  CHECK(stored == ref_checksum(data));
}

struct Reply {
  Bytes bytes;
  std::size_t len = 0;
};

Reply reply_to(const Bytes& original, const std::uint8_t* source, std::size_t out_size = 2000) {
  PacketView view;
  REQUIRE(base::packet::parse(original, view) == ParseError::none);
  Reply r;
  r.bytes.assign(out_size, 0xee);
  r.len = gateway::icmp::make_admin_prohibited(view, source, r.bytes);
  r.bytes.resize(r.len);
  return r;
}

std::size_t reply_len(const Bytes& original, const std::string& source) {
  int family = (original[0] >> 4) == 4 ? AF_INET : AF_INET6;
  return reply_to(original, addr(family, source).data()).len;
}

// Checks every field of an ICMPv4 admin-prohibited reply quoting `quote` bytes of original.
void check_v4_reply(const Reply& r, const Bytes& original, const std::string& source,
                    std::size_t quote) {
  const Bytes& p = r.bytes;
  REQUIRE(r.len == 28 + quote);
  CHECK(p[0] == 0x45);
  CHECK(p[1] == 0);                       // TOS
  CHECK(base::load_be16(p, 2) == r.len);  // total length
  CHECK(base::load_be16(p, 4) == 0);      // ID
  CHECK(base::load_be16(p, 6) == 0);      // flags (DF clear), fragment offset
  CHECK(p[8] == 64);                      // TTL
  CHECK(p[9] == IPPROTO_ICMP);
  CHECK(std::memcmp(&p[12], addr(AF_INET, source).data(), 4) == 0);
  CHECK(std::memcmp(&p[16], &original[12], 4) == 0);  // to the dropped packet's source
  check_checksum(Bytes(p.begin(), p.begin() + 20), 10);
  CHECK(p[20] == 3);   // destination unreachable
  CHECK(p[21] == 13);  // communication administratively prohibited
  CHECK(base::load_be16(p, 24) == 0);
  CHECK(base::load_be16(p, 26) == 0);
  check_checksum(Bytes(p.begin() + 20, p.end()), 2);
  CHECK(Bytes(p.begin() + 28, p.end()) == Bytes(original.begin(), original.begin() + quote));
  // Our own reply parses, and is an ICMP error we would never answer.
  PacketView view;
  REQUIRE(base::packet::parse(p, view) == ParseError::none);
  CHECK(view.protocol == IPPROTO_ICMP);
  CHECK(reply_len(p, "10.9.9.9") == 0);
}

void check_v6_reply(const Reply& r, const Bytes& original, const std::string& source,
                    std::size_t quote) {
  const Bytes& p = r.bytes;
  REQUIRE(r.len == 48 + quote);
  CHECK(p[0] == 0x60);
  CHECK(p[1] == 0);
  CHECK(base::load_be16(p, 2) == 0);  // traffic class, flow label
  CHECK(base::load_be16(p, 4) == 8 + quote);
  CHECK(p[6] == IPPROTO_ICMPV6);
  CHECK(p[7] == 64);
  CHECK(std::memcmp(&p[8], addr(AF_INET6, source).data(), 16) == 0);
  CHECK(std::memcmp(&p[24], &original[8], 16) == 0);
  CHECK(p[40] == 1);  // destination unreachable
  CHECK(p[41] == 1);  // communication with destination administratively prohibited
  CHECK(base::load_be16(p, 44) == 0);
  CHECK(base::load_be16(p, 46) == 0);
  // Pseudo-header built here byte by byte, then the ICMPv6 message.
  Bytes sum(p.begin() + 8, p.begin() + 40);
  std::size_t icmp_len = 8 + quote;
  Bytes tail = {
      0, 0, static_cast<std::uint8_t>(icmp_len >> 8), static_cast<std::uint8_t>(icmp_len), 0, 0,
      0, 58};
  sum.insert(sum.end(), tail.begin(), tail.end());
  sum.insert(sum.end(), p.begin() + 40, p.end());
  check_checksum(sum, 2, 40);
  CHECK(Bytes(p.begin() + 48, p.end()) == Bytes(original.begin(), original.begin() + quote));
  PacketView view;
  REQUIRE(base::packet::parse(p, view) == ParseError::none);
  CHECK(view.protocol == IPPROTO_ICMPV6);
  CHECK(reply_len(p, "fd00::9") == 0);
}

// ICMP messages: test_packets puts sport in the type/code bytes.
Bytes icmp4(const std::string& src, const std::string& dst, std::uint8_t type, std::uint8_t code) {
  return base::test_packets::ipv4(src, dst, IPPROTO_ICMP,
                                  static_cast<std::uint16_t>(type << 8 | code), 0);
}
Bytes icmp6(const std::string& src, const std::string& dst, std::uint8_t type, std::uint8_t code) {
  return base::test_packets::ipv6(src, dst, IPPROTO_ICMPV6,
                                  static_cast<std::uint16_t>(type << 8 | code), 0);
}

// Inserts an IPv6 fragment header (offset in 8-byte units, M flag) after the fixed header.
Bytes with_fragment_header(Bytes p, std::uint16_t offset_units, bool more) {
  std::uint16_t field = static_cast<std::uint16_t>(offset_units << 3 | (more ? 1 : 0));
  Bytes frag = {
      p[6], 0, static_cast<std::uint8_t>(field >> 8), static_cast<std::uint8_t>(field), 0, 0,
      0,    42};
  p.insert(p.begin() + 40, frag.begin(), frag.end());
  p[6] = IPPROTO_FRAGMENT;
  base::store_be16(p, 4, static_cast<std::uint16_t>(p.size() - 40));
  return p;
}

}  // namespace

TEST_CASE("icmp: base::checksum::internet follows RFC 1071") {
  Bytes rfc = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  CHECK(base::checksum::add(rfc) == 0xddf2);
  CHECK(base::checksum::internet(rfc) == 0x220d);
  Bytes odd = {0x01, 0x02, 0x03};
  CHECK(base::checksum::internet(odd) == static_cast<std::uint16_t>(~(0x0102 + 0x0300)));
  CHECK(base::checksum::internet(odd) == ref_checksum(odd));
  // Chaining: the sum of two parts equals the sum of the whole.
  Bytes head(rfc.begin(), rfc.begin() + 4), rest(rfc.begin() + 4, rfc.end());
  CHECK(base::checksum::internet(rest, base::checksum::add(head)) == 0x220d);
}

TEST_CASE("icmp: IPv4 TCP, UDP and echo drops get type 3 code 13 quoting the whole original") {
  auto gw = addr(AF_INET, "10.1.0.1");
  for (auto original :
       {base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_TCP, 40000, 80),
        base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_UDP, 5353, 53, 100),
        icmp4("10.1.0.2", "10.2.0.2", 8, 0)}) {
    CAPTURE(original[9]);
    check_v4_reply(reply_to(original, gw.data()), original, "10.1.0.1", original.size());
  }
}

TEST_CASE("icmp: IPv6 TCP, UDP and echo drops get type 1 code 1 quoting the whole original") {
  auto gw = addr(AF_INET6, "fd01::1");
  for (auto original : {base::test_packets::ipv6("fd01::2", "fd02::2", IPPROTO_TCP, 40000, 443),
                        base::test_packets::ipv6("fd01::2", "fd02::2", IPPROTO_UDP, 5353, 53, 101),
                        icmp6("fd01::2", "fd02::2", 128, 0)}) {
    CAPTURE(original[6]);
    check_v6_reply(reply_to(original, gw.data()), original, "fd01::1", original.size());
  }
}

TEST_CASE("icmp: the quote is cut to a 576-byte (v4) / 1280-byte (v6) reply") {
  auto v4 = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_UDP, 1, 2, 1400);
  auto r4 = reply_to(v4, addr(AF_INET, "10.2.0.2").data());
  CHECK(r4.len == 576);
  check_v4_reply(r4, v4, "10.2.0.2", 576 - 28);

  auto v6 = base::test_packets::ipv6("fd01::2", "fd02::2", IPPROTO_UDP, 1, 2, 1400);
  auto r6 = reply_to(v6, addr(AF_INET6, "fd02::2").data());
  CHECK(r6.len == 1280);
  check_v6_reply(r6, v6, "fd02::2", 1280 - 48);
}

TEST_CASE("icmp: bytes after the IP total length are not quoted") {
  auto original = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_UDP, 1, 2, 4);
  auto padded = original;
  padded.insert(padded.end(), 10, 0xaa);
  check_v4_reply(reply_to(padded, addr(AF_INET, "10.1.0.1").data()), original, "10.1.0.1",
                 original.size());
}

TEST_CASE("icmp: ICMP errors and ICMPv6 redirects are never answered") {
  for (std::uint8_t type : {3, 4, 5, 11, 12}) {
    CAPTURE(int{type});
    CHECK(reply_len(icmp4("10.1.0.2", "10.2.0.2", type, 1), "10.1.0.1") == 0);
  }
  for (std::uint8_t type : {0, 13, 14}) {  // echo reply, timestamp: informational
    CAPTURE(int{type});
    CHECK(reply_len(icmp4("10.1.0.2", "10.2.0.2", type, 0), "10.1.0.1") > 0);
  }
  for (std::uint8_t type : {1, 2, 3, 4, 100, 127, 137}) {
    CAPTURE(int{type});
    CHECK(reply_len(icmp6("fd01::2", "fd02::2", type, 0), "fd01::1") == 0);
  }
  CHECK(reply_len(icmp6("fd01::2", "fd02::2", 129, 0), "fd01::1") > 0);  // echo reply
  // An ICMP error behind a fragment header is still recognised.
  CHECK(reply_len(with_fragment_header(icmp6("fd01::2", "fd02::2", 1, 0), 0, true), "fd01::1") ==
        0);
}

TEST_CASE("icmp: only the first fragment is answered") {
  auto v4 = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_UDP, 1, 2);
  auto first = v4;
  first[6] = 0x20;  // MF, offset 0
  auto r = reply_to(first, addr(AF_INET, "10.1.0.1").data());
  check_v4_reply(r, first, "10.1.0.1", first.size());
  auto later = v4;
  later[7] = 0x10;  // offset 16 * 8, MF clear: the last fragment
  CHECK(reply_len(later, "10.1.0.1") == 0);
  later[6] = 0x20;  // a middle fragment
  CHECK(reply_len(later, "10.1.0.1") == 0);

  auto v6 = base::test_packets::ipv6("fd01::2", "fd02::2", IPPROTO_UDP, 1, 2);
  auto first6 = with_fragment_header(v6, 0, true);
  check_v6_reply(reply_to(first6, addr(AF_INET6, "fd01::1").data()), first6, "fd01::1",
                 first6.size());
  CHECK(reply_len(with_fragment_header(v6, 100, true), "fd01::1") == 0);
  CHECK(reply_len(with_fragment_header(v6, 100, false), "fd01::1") == 0);
}

TEST_CASE("icmp: no reply to multicast destinations or to sources that are not one host") {
  auto udp4 = [](const char* src, const char* dst) {
    return base::test_packets::ipv4(src, dst, IPPROTO_UDP, 1, 2);
  };
  auto udp6 = [](const char* src, const char* dst) {
    return base::test_packets::ipv6(src, dst, IPPROTO_UDP, 1, 2);
  };
  CHECK(reply_len(udp4("10.1.0.2", "224.0.0.251"), "10.1.0.1") == 0);
  CHECK(reply_len(udp4("10.1.0.2", "239.1.2.3"), "10.1.0.1") == 0);
  CHECK(reply_len(udp4("10.1.0.2", "255.255.255.255"), "10.1.0.1") == 0);
  for (const char* src : {"0.0.0.0", "127.0.0.1", "224.0.0.5", "255.255.255.255", "240.0.0.1"}) {
    CAPTURE(src);
    CHECK(reply_len(udp4(src, "10.2.0.2"), "10.1.0.1") == 0);
  }
  CHECK(reply_len(udp6("fd01::2", "ff02::1"), "fd01::1") == 0);
  CHECK(reply_len(udp6("fd01::2", "ff0e::101"), "fd01::1") == 0);
  for (const char* src : {"::", "::1", "ff02::1"}) {
    CAPTURE(src);
    CHECK(reply_len(udp6(src, "fd02::2"), "fd01::1") == 0);
  }
  CHECK(reply_len(udp6("fe80::2", "fd02::2"), "fd01::1") > 0);  // link-local is one host

  // A reply source that is not one host (e.g. the dropped packet's 0.0.0.0 destination): none.
  CHECK(reply_len(udp4("10.1.0.2", "0.0.0.0"), "0.0.0.0") == 0);
  CHECK(reply_len(udp6("fd01::2", "fd02::2"), "::") == 0);
  PacketView view;
  auto ok = udp4("10.1.0.2", "10.2.0.2");
  REQUIRE(base::packet::parse(ok, view) == ParseError::none);
  std::array<std::uint8_t, 600> out{};
  CHECK(gateway::icmp::make_admin_prohibited(view, nullptr, out) == 0);
  CHECK(gateway::icmp::make_admin_prohibited(PacketView{}, addr(AF_INET, "10.1.0.1").data(), out) ==
        0);
}

TEST_CASE("icmp: a small out truncates the quote down to the L3 header + 8 bytes, else 0") {
  auto big = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_TCP, 40000, 80, 1000);
  auto gw4 = addr(AF_INET, "10.1.0.1");
  check_v4_reply(reply_to(big, gw4.data(), 100), big, "10.1.0.1", 72);
  check_v4_reply(reply_to(big, gw4.data(), 56), big, "10.1.0.1", 28);  // 20 + 8 quoted
  CHECK(reply_to(big, gw4.data(), 55).len == 0);
  CHECK(reply_to(big, gw4.data(), 0).len == 0);
  // An original shorter than its header + 8 needs only itself.
  auto tiny = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_TCP, 40000, 80, 0);
  tiny.resize(24);
  tiny[3] = 24;
  check_v4_reply(reply_to(tiny, gw4.data(), 52), tiny, "10.1.0.1", 24);

  auto big6 = base::test_packets::ipv6("fd01::2", "fd02::2", IPPROTO_UDP, 1, 2, 2000);
  auto gw6 = addr(AF_INET6, "fd01::1");
  check_v6_reply(reply_to(big6, gw6.data(), 700), big6, "fd01::1", 652);
  check_v6_reply(reply_to(big6, gw6.data(), 96), big6, "fd01::1", 48);
  CHECK(reply_to(big6, gw6.data(), 95).len == 0);
}

TEST_CASE("icmp: RateLimiter allows a burst, then refills at its rate") {
  gateway::icmp::RateLimiter limiter(10, 20);
  for (int i = 0; i < 20; ++i) CHECK(limiter.allow(100.0));
  CHECK_FALSE(limiter.allow(100.0));
  CHECK_FALSE(limiter.allow(100.05));  // half a token
  CHECK(limiter.allow(100.1));         // one whole token since 100.0
  CHECK_FALSE(limiter.allow(100.1));
  for (int i = 0; i < 5; ++i) CHECK(limiter.allow(100.6));  // 0.5 s: five tokens
  CHECK_FALSE(limiter.allow(100.6));
  CHECK(limiter.allowed() == 26);
  CHECK(limiter.suppressed() == 4);

  // A long pause refills only up to the burst.
  int allowed = 0;
  for (int i = 0; i < 50; ++i) allowed += limiter.allow(1000.0) ? 1 : 0;
  CHECK(allowed == 20);
  // A clock going backwards adds nothing, and time is counted again from the latest instant.
  CHECK_FALSE(limiter.allow(500.0));
  CHECK_FALSE(limiter.allow(1000.05));
  CHECK(limiter.allow(1000.1));

  gateway::icmp::RateLimiter defaults;
  int n = 0;
  while (defaults.allow(0) && n < 100) ++n;
  CHECK(n == 20);

  gateway::icmp::RateLimiter none(10, 0);
  CHECK_FALSE(none.allow(0));
  CHECK_FALSE(none.allow(10));
  CHECK(none.suppressed() == 2);
}
