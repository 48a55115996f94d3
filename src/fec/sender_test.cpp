// FEC sender tests: DATA numbering, block closing (full, by age, forced), the parity count per
// block, parity that rebuilds the block, redundancy changes at block boundaries.

#include "src/fec/sender.hpp"

#include <doctest/doctest.h>

#include <vector>

#include "src/base/bytes.hpp"

namespace {

using Bytes = std::vector<std::uint8_t>;
using namespace fec;

crypto::Key test_key() {
  crypto::Key key{};
  key[0] = 1;
  key[31] = 2;
  return key;
}

struct Capture {
  std::vector<Bytes> out;
  Emit emit() {
    return [this](std::span<const std::uint8_t> d) { out.emplace_back(d.begin(), d.end()); };
  }
};

Bytes packet_of(std::size_t len, std::uint8_t seed) {
  Bytes p(len);
  for (std::size_t i = 0; i < len; ++i) p[i] = static_cast<std::uint8_t>(seed * 13 + i);
  return p;
}

// Sends a packet and returns its parsed header.
wire::Data add(Sender& s, const Bytes& packet, double now, Capture& c, Bytes* datagram = nullptr) {
  std::uint8_t header[wire::kDataHeader];
  s.add(packet, header, now, c.emit());
  static Bytes d;
  d.assign(header, header + wire::kDataHeader);
  d.insert(d.end(), packet.begin(), packet.end());
  if (datagram) *datagram = d;
  auto parsed = wire::parse_data(d);
  REQUIRE(parsed);
  return *parsed;
}

}  // namespace

TEST_CASE("fec sender: without redundancy packets are numbered only") {
  Sender s(test_key(), {.first_seq = 0xfffffffe});
  Capture c;
  for (std::uint32_t i = 0; i < 5; ++i) {
    wire::Data d = add(s, packet_of(100, 1), i * 0.01, c);
    CHECK(d.seq == 0xfffffffe + i);
    CHECK(!d.is_protected);
    CHECK(!s.next_deadline());
  }
  s.flush(1.0, true, c.emit());
  CHECK(c.out.empty());
  CHECK(s.stats().data == 5);
  CHECK(s.stats().parity == 0);
  CHECK(s.stats().blocks == 0);
}

TEST_CASE("fec sender: a full block emits ceil(n * r) parity that rebuild it") {
  Sender s(test_key(), {.max_data = 32, .max_block_age = 1.0, .first_seq = 1000});
  s.set_redundancy(0.125);
  Capture c;
  std::vector<Bytes> packets;
  for (std::size_t i = 0; i < 32; ++i) {
    packets.push_back(packet_of(1 + i * 37 % 1400, static_cast<std::uint8_t>(i)));
    wire::Data d = add(s, packets.back(), 0.0, c);
    CHECK(d.seq == 1000 + i);
    CHECK(d.is_protected);
    if (i < 31) {
      CHECK(c.out.empty());
      CHECK(s.next_deadline() == doctest::Approx(1.0));
    }
  }
  CHECK(!s.next_deadline());
  REQUIRE(c.out.size() == 4);
  std::size_t longest = 0;
  for (const Bytes& p : packets) longest = std::max(longest, p.size());
  std::vector<Bytes> symbols;
  for (std::size_t p = 0; p < 4; ++p) {
    CHECK(wire::verify(c.out[p], test_key()));
    auto parity = wire::parse_parity(c.out[p]);
    REQUIRE(parity);
    CHECK(parity->first == 1000);
    CHECK(parity->k == 32);
    CHECK(parity->m == 4);
    CHECK(parity->index == p);
    CHECK(parity->symbol.size() == longest + 2);
    CHECK(c.out[p].size() == longest + wire::kParityOverhead);
    symbols.emplace_back(parity->symbol.begin(), parity->symbol.end());
  }
  // Lose data 0, 5, 17 and 31: the four parity give them back.
  std::size_t len = longest + 2;
  std::vector<Bytes> data(32);
  std::vector<const std::uint8_t*> in(32), par(4);
  std::vector<std::uint8_t*> out(32, nullptr);
  std::vector<Bytes> rebuilt(32, Bytes(len));
  for (std::size_t i = 0; i < 32; ++i) {
    data[i] = Bytes(len, 0);
    base::store_be16(data[i].data(), static_cast<std::uint16_t>(packets[i].size()));
    std::copy(packets[i].begin(), packets[i].end(), data[i].begin() + 2);
    in[i] = data[i].data();
  }
  for (std::size_t lost : {0, 5, 17, 31}) {
    in[lost] = nullptr;
    out[lost] = rebuilt[lost].data();
  }
  for (std::size_t p = 0; p < 4; ++p) par[p] = symbols[p].data();
  Codec codec;
  REQUIRE(codec.decode(in, par, out, len));
  for (std::size_t lost : {0, 5, 17, 31}) {
    auto packet = wire::symbol_packet(rebuilt[lost]);
    REQUIRE(packet);
    CHECK(Bytes(packet->begin(), packet->end()) == packets[lost]);
  }
  CHECK(s.stats().data == 32);
  CHECK(s.stats().parity == 4);
  CHECK(s.stats().blocks == 1);
}

TEST_CASE("fec sender: the age limit closes a block in flush, not before") {
  Sender s(test_key(), {.max_data = 32, .max_block_age = 0.002, .first_seq = 7});
  s.set_redundancy(0.25);
  Capture c;
  add(s, packet_of(10, 1), 1.0, c);
  add(s, packet_of(20, 2), 1.001, c);
  add(s, packet_of(30, 3), 1.0015, c);
  CHECK(s.next_deadline() == doctest::Approx(1.002));
  s.flush(1.0019, false, c.emit());
  CHECK(c.out.empty());
  s.flush(1.002, false, c.emit());
  REQUIRE(c.out.size() == 1);  // ceil(3 * 0.25)
  auto parity = wire::parse_parity(c.out[0]);
  REQUIRE(parity);
  CHECK(parity->first == 7);
  CHECK(parity->k == 3);
  CHECK(parity->m == 1);
  CHECK(parity->symbol.size() == 32);
  CHECK(!s.next_deadline());
  // The next packet opens a new block; force closes it at once.
  wire::Data d = add(s, packet_of(5, 4), 5.0, c);
  CHECK(d.seq == 10);
  CHECK(s.next_deadline() == doctest::Approx(5.002));
  s.flush(5.0, true, c.emit());
  REQUIRE(c.out.size() == 2);
  parity = wire::parse_parity(c.out[1]);
  CHECK(parity->first == 10);
  CHECK(parity->k == 1);
  CHECK(parity->m == 1);
  s.flush(6.0, true, c.emit());  // nothing open: nothing to do
  CHECK(c.out.size() == 2);
}

TEST_CASE("fec sender: parity count per block size and redundancy, capped") {
  struct Case {
    std::size_t n;
    double r;
    std::size_t m;
  } cases[] = {{1, 0.01, 1}, {10, 0.1, 1},  {30, 0.1, 3},  {32, 0.125, 4}, {33, 0.125, 5},
               {5, 0.25, 2}, {64, 0.5, 16}, {64, 0.9, 16}, {20, 0.3, 6},   {3, 0.5, 2}};
  for (const Case& k : cases) {
    CAPTURE(k.n);
    CAPTURE(k.r);
    Sender s(test_key(), {.max_data = 64, .max_block_age = 1.0});
    s.set_redundancy(k.r);
    Capture c;
    for (std::size_t i = 0; i < k.n; ++i) add(s, packet_of(50, 1), 0.0, c);
    s.flush(0.0, true, c.emit());
    CHECK(c.out.size() == k.m);
    for (const Bytes& p : c.out) CHECK(wire::parse_parity(p)->m == k.m);
  }
  Sender s(test_key());
  s.set_redundancy(-1);
  CHECK(s.redundancy() == 0);
  s.set_redundancy(3);
  CHECK(s.redundancy() == 0.5);
}

TEST_CASE("fec sender: a redundancy change takes effect at the next block") {
  Sender s(test_key(), {.max_data = 4, .max_block_age = 1.0, .first_seq = 0});
  Capture c;
  s.set_redundancy(0.5);
  add(s, packet_of(10, 1), 0, c);
  s.set_redundancy(0);  // the open block keeps r = 0.5
  add(s, packet_of(10, 2), 0, c);
  CHECK(add(s, packet_of(10, 3), 0, c).is_protected);
  CHECK(add(s, packet_of(10, 4), 0, c).is_protected);
  CHECK(c.out.size() == 2);
  CHECK(!add(s, packet_of(10, 5), 0, c).is_protected);  // now r = 0
  s.set_redundancy(0.25);  // the next packet opens a block with r = 0.25
  wire::Data d = add(s, packet_of(10, 6), 0, c);
  CHECK(d.is_protected);
  CHECK(d.seq == 5);
  s.flush(0, true, c.emit());
  REQUIRE(c.out.size() == 3);
  CHECK(wire::parse_parity(c.out[2])->first == 5);
  CHECK(wire::parse_parity(c.out[2])->k == 1);
}

TEST_CASE("fec sender: max_data 1 and 64, empty packets, a random first number") {
  Sender one(test_key(), {.max_data = 0, .max_block_age = 1.0});  // clamped to 1
  one.set_redundancy(0.5);
  Capture c;
  add(one, Bytes{}, 0, c);
  REQUIRE(c.out.size() == 1);
  auto parity = wire::parse_parity(c.out[0]);
  CHECK(parity->k == 1);
  CHECK(parity->symbol.size() == 2);
  Sender big(test_key(), {.max_data = 1000, .max_block_age = 1.0});  // clamped to 64
  big.set_redundancy(0.1);
  Capture d;
  for (int i = 0; i < 64; ++i) add(big, packet_of(3, 1), 0, d);
  REQUIRE(d.out.size() == 7);
  CHECK(wire::parse_parity(d.out[0])->k == 64);
  // Two senders start far apart (a restarted one is told from its predecessor).
  Sender a(test_key()), b(test_key());
  Capture e;
  std::uint32_t sa = add(a, packet_of(1, 1), 0, e).seq, sb = add(b, packet_of(1, 1), 0, e).seq;
  CHECK(sa != sb);
}
