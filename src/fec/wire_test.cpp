// FEC wire format tests: round trips, every malformed length, kind and field rejected, MACs that
// bind every byte and the key.

#include "src/fec/wire.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <vector>

namespace {

using Bytes = std::vector<std::uint8_t>;
using namespace fec::wire;

crypto::Key key_of(std::uint8_t seed) {
  crypto::Key key;
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(seed + 7 * i);
  return key;
}

Bytes data_datagram(std::uint32_t seq, bool is_protected, const Bytes& packet) {
  Bytes out(kDataHeader);
  encode_data_header(seq, is_protected, out.data());
  out.insert(out.end(), packet.begin(), packet.end());
  return out;
}

Bytes parity_datagram(const Parity& p, const crypto::Key& key) {
  Bytes out(parity_size(p.symbol.size()));
  auto written = encode_parity(p, key, out);
  CHECK(written.size() == out.size());
  CHECK(written.data() == out.data());
  return out;
}

}  // namespace

TEST_CASE("fec wire: DATA headers round-trip, both kinds, any packet length") {
  for (bool is_protected : {true, false}) {
    for (std::uint32_t seq : {0u, 1u, 0x12345678u, 0xffffffffu}) {
      for (std::size_t len : {std::size_t{0}, std::size_t{1}, std::size_t{1400}, kMaxPacket}) {
        Bytes packet(len);
        for (std::size_t i = 0; i < len; ++i) packet[i] = static_cast<std::uint8_t>(i * 31 + 5);
        Bytes d = data_datagram(seq, is_protected, packet);
        CHECK(d[0] == 0);
        CHECK(d[1] == 0);
        CHECK(d[2] == 0x46);
        CHECK(d[3] == (is_protected ? 1 : 4));
        CHECK(kind_of(d) == (is_protected ? Kind::data : Kind::data_unprotected));
        auto parsed = parse_data(d);
        REQUIRE(parsed);
        CHECK(parsed->seq == seq);
        CHECK(parsed->is_protected == is_protected);
        CHECK(parsed->packet.data() == d.data() + kDataHeader);
        CHECK(Bytes(parsed->packet.begin(), parsed->packet.end()) == packet);
      }
    }
  }
  std::uint8_t h[kDataHeader];
  encode_data_header(0x01020304, true, h);
  const std::uint8_t want[kDataHeader] = {0, 0, 0x46, 1, 1, 2, 3, 4};
  CHECK(std::memcmp(h, want, kDataHeader) == 0);
}

TEST_CASE("fec wire: kind_of tells FEC datagrams from SCTP packets and path probes") {
  CHECK(!kind_of({}));
  for (std::uint8_t kind = 0; kind < 8; ++kind) {
    Bytes d = {0, 0, 0x46, kind, 0, 0, 0, 0};
    if (kind >= 1 && kind <= 4)
      CHECK(kind_of(d) == static_cast<Kind>(kind));
    else
      CHECK(!kind_of(d));
    CHECK(!kind_of(std::span(d).first(3)));
  }
  CHECK(!kind_of(Bytes{0, 0, 0, 0, 'S', 'T', 'P', 'B'}));      // a path probe
  CHECK(!kind_of(Bytes{0x13, 0x88, 0x13, 0x88, 0, 0, 0, 1}));  // SCTP, ports 5000
  CHECK(!kind_of(Bytes{0, 1, 0x46, 1, 0, 0, 0, 1}));
  CHECK(!kind_of(Bytes{1, 0, 0x46, 1, 0, 0, 0, 1}));
  CHECK(!kind_of(Bytes{0, 0, 0x47, 1, 0, 0, 0, 1}));
}

TEST_CASE("fec wire: malformed DATA is rejected") {
  Bytes d = data_datagram(7, true, Bytes(20, 0xab));
  for (std::size_t n = 0; n < kDataHeader; ++n) CHECK(!parse_data(std::span(d).first(n)));
  CHECK(parse_data(std::span(d).first(kDataHeader)));  // an empty packet is well-formed
  Bytes too_long = data_datagram(7, true, Bytes(kMaxPacket + 1));
  CHECK(!parse_data(too_long));
  for (std::uint8_t kind : {0, 2, 3, 5, 255}) {
    Bytes bad = d;
    bad[3] = kind;
    CHECK(!parse_data(bad));
  }
  for (std::size_t at : {0, 1, 2}) {
    Bytes bad = d;
    bad[at] ^= 1;
    CHECK(!parse_data(bad));
  }
}

TEST_CASE("fec wire: PARITY round-trips and every malformed field is rejected") {
  crypto::Key key = key_of(1);
  Bytes symbol(300);
  for (std::size_t i = 0; i < symbol.size(); ++i) symbol[i] = static_cast<std::uint8_t>(i ^ 0x5a);
  Parity p{0xfffffff0u, 64, 16, 15, symbol};
  Bytes d = parity_datagram(p, key);
  CHECK(d.size() == kParityHeader + symbol.size() + kMacSize);
  CHECK(d.size() == symbol.size() - kSymbolPrefix + kParityOverhead);
  const std::uint8_t head[kParityHeader] = {0,    0,  0x46, 2,  0xff, 0xff, 0xff,
                                            0xf0, 64, 16,   15, 0,    0x01, 0x2c};
  CHECK(std::memcmp(d.data(), head, kParityHeader) == 0);
  CHECK(kind_of(d) == Kind::parity);
  auto parsed = parse_parity(d);
  REQUIRE(parsed);
  CHECK(parsed->first == p.first);
  CHECK(parsed->k == 64);
  CHECK(parsed->m == 16);
  CHECK(parsed->index == 15);
  CHECK(parsed->symbol.data() == d.data() + kParityHeader);
  CHECK(Bytes(parsed->symbol.begin(), parsed->symbol.end()) == symbol);
  CHECK(verify(d, key));
  CHECK(!verify(d, key_of(2)));

  SUBCASE("the symbol may already sit in place") {
    Bytes in_place(parity_size(symbol.size()));
    std::memcpy(in_place.data() + kParityHeader, symbol.data(), symbol.size());
    Parity q = p;
    q.symbol = std::span(in_place).subspan(kParityHeader, symbol.size());
    encode_parity(q, key, in_place);
    CHECK(in_place == d);
  }
  SUBCASE("the smallest symbol: a block of empty packets") {
    Bytes tiny = parity_datagram({1, 1, 1, 0, Bytes{0, 0}}, key);
    CHECK(parse_parity(tiny));
    CHECK(!parse_parity(std::span(tiny).first(tiny.size() - 1)));
  }
  SUBCASE("every truncation and extension") {
    for (std::size_t n = 0; n < d.size(); ++n) CHECK(!parse_parity(std::span(d).first(n)));
    Bytes longer = d;
    longer.push_back(0);
    CHECK(!parse_parity(longer));
  }
  SUBCASE("k, m, index, reserved, symbol_len, kind") {
    auto with = [&](std::size_t at, std::uint8_t v) {
      Bytes bad = d;
      bad[at] = v;
      return parse_parity(bad).has_value();
    };
    CHECK(!with(8, 0));
    CHECK(with(8, 1));
    CHECK(!with(8, 65));
    CHECK(!with(9, 0));
    CHECK(!with(9, 17));
    CHECK(!with(10, 16));  // index == m
    CHECK(!with(11, 1));
    CHECK(!with(12, 0x02));  // symbol_len disagrees with the size
    CHECK(!with(13, 0x2d));
    CHECK(!with(13, 0x2b));
    CHECK(!with(3, 1));
    CHECK(!with(3, 3));
    Bytes small_m = d;
    small_m[9] = 3;
    small_m[10] = 2;
    CHECK(parse_parity(small_m));
    small_m[10] = 3;
    CHECK(!parse_parity(small_m));
  }
  CHECK(!parse_parity(data_datagram(1, true, Bytes(400))));
}

TEST_CASE("fec wire: REPORT round-trips and is checked") {
  crypto::Key key = key_of(3);
  Report r{0xdeadbeef, 1, 0xffffffff, 3, 4};
  auto d = encode_report(r, key);
  CHECK(d.size() == kReportSize);
  CHECK(kind_of(d) == Kind::report);
  CHECK(parse_report(d) == r);
  CHECK(parse_report(d, key) == r);
  CHECK(!parse_report(d, key_of(4)));
  CHECK(verify(d, key));
  for (std::size_t n = 0; n < d.size(); ++n) CHECK(!parse_report(std::span(d).first(n)));
  Bytes longer(d.begin(), d.end());
  longer.push_back(0);
  CHECK(!parse_report(longer));
  for (std::size_t at = 24; at < 28; ++at) {
    auto bad = d;
    bad[at] = 1;
    CHECK(!parse_report(bad));
  }
  auto wrong_kind = d;
  wrong_kind[3] = 2;
  CHECK(!parse_report(wrong_kind));
}

TEST_CASE("fec wire: the MAC binds every bit of PARITY and REPORT") {
  crypto::Key key = key_of(9);
  Bytes symbol = {0, 3, 1, 2, 3, 0};
  Bytes parity = parity_datagram({42, 3, 2, 1, symbol}, key);
  auto report = encode_report({1, 2, 3, 4, 5}, key);
  Bytes reported(report.begin(), report.end());
  for (Bytes* d : {&parity, &reported}) {
    REQUIRE(verify(*d, key));
    for (std::size_t bit = 0; bit < d->size() * 8; ++bit) {
      Bytes bad = *d;
      bad[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      CHECK(!verify(bad, key));
    }
    for (std::size_t byte = 0; byte < key.size(); ++byte) {
      crypto::Key other = key;
      other[byte] ^= 0x80;
      CHECK(!verify(*d, other));
    }
  }
  CHECK(!verify(Bytes(kMacSize + 3), key));
}

TEST_CASE("fec wire: symbols carry their packet's length") {
  Bytes symbol(10, 0);
  encode_symbol_prefix(8, symbol.data());
  symbol[2] = 9;
  auto packet = symbol_packet(symbol);
  REQUIRE(packet);
  CHECK(packet->size() == 8);
  CHECK(packet->data() == symbol.data() + 2);
  encode_symbol_prefix(0, symbol.data());
  CHECK(symbol_packet(symbol)->empty());
  encode_symbol_prefix(9, symbol.data());
  CHECK(!symbol_packet(symbol));
  CHECK(!symbol_packet(std::span(symbol).first(1)));
  encode_symbol_prefix(kMaxPacket, symbol.data());
  CHECK(symbol[0] == 0xff);
  CHECK(symbol[1] == 0xfd);
}
