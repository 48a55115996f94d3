// FEC receiver tests: the hold/rebuild/give-up semantics one case at a time, then Sender and
// Receiver end to end against an oracle (random sizes, Bernoulli and burst loss of data and
// parity, fake time), and the absence of allocations in steady state.

#include "src/fec/receiver.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "src/fec/sender.hpp"

// Counts the allocations of the whole test binary (not under AddressSanitizer, which has its
// own allocator): the steady-state test checks that the FEC data path makes none.
#if defined(__SANITIZE_ADDRESS__)
#define FEC_TEST_COUNT_ALLOCATIONS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FEC_TEST_COUNT_ALLOCATIONS 0
#endif
#endif
#ifndef FEC_TEST_COUNT_ALLOCATIONS
#define FEC_TEST_COUNT_ALLOCATIONS 1
#endif

#if FEC_TEST_COUNT_ALLOCATIONS
namespace {
std::atomic<std::uint64_t> g_allocations{0};
}
// Not inlined: GCC would pair the inlined malloc and free with new and delete and warn.
[[gnu::noinline]] void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
#endif

namespace {

using Bytes = std::vector<std::uint8_t>;
using namespace fec;

crypto::Key test_key() {
  crypto::Key key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(0x30 + i);
  return key;
}

Bytes packet_of(std::size_t len, std::uint32_t seed) {
  Bytes p(len);
  for (std::size_t i = 0; i < len; ++i) p[i] = static_cast<std::uint8_t>(seed * 131 + i * 7);
  return p;
}

Bytes data_datagram(std::uint32_t seq, bool is_protected, const Bytes& packet) {
  Bytes d(wire::kDataHeader);
  wire::encode_data_header(seq, is_protected, d.data());
  d.insert(d.end(), packet.begin(), packet.end());
  return d;
}

// What a Sender puts on the wire, in order: each DATA datagram, then the parity its add() or
// flush() emitted.
struct Wire {
  struct Item {
    Bytes bytes;
    bool parity = false;
    std::uint32_t seq = 0;  // DATA: its number; PARITY: its block's first
  };
  std::vector<Item> items;
  std::vector<Bytes> packets;  // by data index

  // n packets of the given lengths in blocks of max_data with redundancy r; the last block is
  // closed with flush(force).
  static Wire make(std::uint32_t first, std::size_t n, std::size_t max_data, double r,
                   std::size_t len = 100) {
    Wire w;
    Sender s(test_key(), {.max_data = max_data, .max_block_age = 1e9, .first_seq = first});
    s.set_redundancy(r);
    std::vector<Bytes> parity;
    Emit emit = [&](std::span<const std::uint8_t> d) { parity.emplace_back(d.begin(), d.end()); };
    for (std::size_t i = 0; i < n; ++i) {
      w.packets.push_back(packet_of(len + i, first + static_cast<std::uint32_t>(i)));
      std::uint8_t header[wire::kDataHeader];
      s.add(w.packets.back(), header, 0, emit);
      Bytes d(header, header + wire::kDataHeader);
      d.insert(d.end(), w.packets.back().begin(), w.packets.back().end());
      w.items.push_back({d, false, first + static_cast<std::uint32_t>(i)});
      if (i + 1 == n) s.flush(0, true, emit);
      for (Bytes& p : parity) w.items.push_back({p, true, wire::parse_parity(p)->first});
      parity.clear();
    }
    return w;
  }
  const Bytes& data(std::uint32_t seq) const {
    for (const Item& i : items)
      if (!i.parity && i.seq == seq) return i.bytes;
    FAIL("no such datagram");
    return items[0].bytes;
  }
  std::vector<const Bytes*> parity_of(std::uint32_t first) const {
    std::vector<const Bytes*> out;
    for (const Item& i : items)
      if (i.parity && i.seq == first) out.push_back(&i.bytes);
    return out;
  }
};

struct Sink {
  std::vector<Bytes> got;
  Receiver::Deliver deliver() {
    return [this](std::span<const std::uint8_t> p) { got.emplace_back(p.begin(), p.end()); };
  }
};

// Feeds data seqs [from, to) of w except those in skip.
void feed(Receiver& r, const Wire& w, std::uint32_t from, std::uint32_t to, double now, Sink& sink,
          std::vector<std::uint32_t> skip = {}) {
  for (std::uint32_t s = from; s != to; ++s)
    if (std::find(skip.begin(), skip.end(), s) == skip.end())
      r.on_data(w.data(s), now, sink.deliver());
}

}  // namespace

TEST_CASE("fec receiver: in-order data is delivered at once, nothing held") {
  Wire w = Wire::make(500, 10, 8, 0.25);
  Receiver r(test_key());
  Sink sink;
  for (const auto& item : w.items) {
    if (item.parity)
      r.on_parity(item.bytes, 0, sink.deliver());
    else
      r.on_data(item.bytes, 0, sink.deliver());
    CHECK(!r.next_deadline());
  }
  CHECK(sink.got == w.packets);
  CHECK(r.stats().received == 10);
  CHECK(r.stats().lost == 0);
  CHECK(r.stats().highest_seq == 509);
  CHECK(r.stats().parity_in == 3);  // 2 for the block of 8, 1 for the block of 2
  CHECK(r.stats().held_max == 0);
}

TEST_CASE("fec receiver: a lost datagram is rebuilt from parity, later ones held until then") {
  Wire w = Wire::make(100, 8, 8, 0.25);  // one block: 8 data, 2 parity
  Receiver r(test_key());
  Sink sink;
  feed(r, w, 100, 108, 1.0, sink, {103});
  CHECK(sink.got.size() == 3);  // 104..107 held behind the gap
  CHECK(r.stats().lost == 1);
  CHECK(r.stats().held_max == 4);
  CHECK(r.next_deadline() == doctest::Approx(1.005));
  r.on_parity(*w.parity_of(100)[1], 1.001, sink.deliver());
  CHECK(sink.got == w.packets);
  CHECK(r.stats().rebuilt == 1);
  CHECK(r.stats().unrecovered == 0);
  CHECK(!r.next_deadline());
  r.on_parity(*w.parity_of(100)[0], 1.002, sink.deliver());  // the block is complete: dropped
  CHECK(sink.got.size() == 8);
  CHECK(r.stats().parity_in == 2);
}

TEST_CASE("fec receiver: a lost last datagram is rebuilt as soon as the parity comes") {
  Wire w = Wire::make(0xfffffffc, 8, 8, 0.125);  // wraps through 0
  Receiver r(test_key());
  Sink sink;
  feed(r, w, 0xfffffffc, 3, 0, sink);
  CHECK(sink.got.size() == 7);
  CHECK(!r.next_deadline());
  r.on_parity(*w.parity_of(0xfffffffc)[0], 0, sink.deliver());
  CHECK(sink.got == w.packets);
  CHECK(r.stats().lost == 1);
  CHECK(r.stats().rebuilt == 1);
  CHECK(r.stats().highest_seq == 3);
  // The datagram itself comes after all: a duplicate.
  r.on_data(w.data(3), 0, sink.deliver());
  CHECK(r.stats().duplicates == 1);
  CHECK(sink.got.size() == 8);
}

TEST_CASE("fec receiver: holds end at the deadline; each gap keeps its own") {
  Wire w = Wire::make(0, 8, 8, 0.25);
  Receiver r(test_key(), {.hold = 0.005});
  Sink sink;
  feed(r, w, 0, 3, 1.0, sink);
  r.on_data(w.data(4), 1.001, sink.deliver());  // gap {3}, deadline 1.006
  r.on_data(w.data(5), 1.002, sink.deliver());
  r.on_data(w.data(7), 1.003, sink.deliver());  // gap {6}, deadline 1.008
  CHECK(sink.got.size() == 3);
  CHECK(r.next_deadline() == doctest::Approx(1.006));
  r.on_timer(1.0059, sink.deliver());
  CHECK(sink.got.size() == 3);
  r.on_timer(1.006, sink.deliver());
  REQUIRE(sink.got.size() == 5);  // 4 and 5, then the gap at 6 holds 7
  CHECK(sink.got[3] == w.packets[4]);
  CHECK(sink.got[4] == w.packets[5]);
  CHECK(r.stats().unrecovered == 1);
  CHECK(r.next_deadline() == doctest::Approx(1.008));
  r.on_timer(1.1, sink.deliver());
  REQUIRE(sink.got.size() == 6);
  CHECK(sink.got[5] == w.packets[7]);
  CHECK(r.stats().lost == 2);
  CHECK(r.stats().unrecovered == 2);
  CHECK(!r.next_deadline());
  // The given-up ones arrive late: delivered, counted; once.
  r.on_data(w.data(3), 1.2, sink.deliver());
  r.on_data(w.data(3), 1.2, sink.deliver());
  CHECK(sink.got.size() == 7);
  CHECK(sink.got[6] == w.packets[3]);
  CHECK(r.stats().late == 1);
  CHECK(r.stats().duplicates == 1);
  // The parity, late too: its block's gaps were given up, so nothing comes of it.
  for (const Bytes* p : w.parity_of(0)) r.on_parity(*p, 1.3, sink.deliver());
  CHECK(sink.got.size() == 7);
  CHECK(r.stats().rebuilt == 0);
}

TEST_CASE("fec receiver: when all parity came and cannot rebuild, the gaps are given up at once") {
  Wire w = Wire::make(10, 8, 8, 0.25);  // m = 2
  Receiver r(test_key());
  Sink sink;
  feed(r, w, 10, 18, 0, sink, {11, 12, 15});
  CHECK(sink.got.size() == 1);
  auto parity = w.parity_of(10);
  r.on_parity(*parity[0], 0, sink.deliver());
  CHECK(sink.got.size() == 1);
  r.on_parity(*parity[1], 0, sink.deliver());
  CHECK(sink.got.size() == 5);
  CHECK(r.stats().lost == 3);
  CHECK(r.stats().unrecovered == 3);
  CHECK(!r.next_deadline());
}

TEST_CASE("fec receiver: a late datagram completes a block together with too few parity") {
  Wire w = Wire::make(10, 8, 8, 0.125);  // m = 1
  Receiver r(test_key());
  Sink sink;
  feed(r, w, 10, 18, 0, sink, {12, 14});
  r.on_parity(*w.parity_of(10)[0], 0, sink.deliver());
  // 2 missing, the only parity came: they are given up, 13 and 15..17 delivered.
  CHECK(sink.got.size() == 6);
  CHECK(r.stats().unrecovered == 2);

  Receiver q(test_key());
  Sink sink2;
  Wire w2 = Wire::make(10, 8, 8, 0.25);  // m = 2, one parity lost
  feed(q, w2, 10, 18, 0, sink2, {12, 14, 16});
  q.on_parity(*w2.parity_of(10)[0], 0, sink2.deliver());
  CHECK(sink2.got.size() == 2);
  q.on_data(w2.data(14), 0, sink2.deliver());  // reordered: now 6 data + 1 parity = 7 < 8
  CHECK(sink2.got.size() == 2);
  q.on_data(w2.data(16), 0, sink2.deliver());  // 7 + 1 = 8: 12 is rebuilt
  CHECK(sink2.got == w2.packets);
  CHECK(q.stats().reordered == 2);
  CHECK(q.stats().rebuilt == 1);
  CHECK(q.stats().lost == 3);
}

TEST_CASE("fec receiver: without parity (r == 0) gaps are never held") {
  Wire w = Wire::make(0, 10, 8, 0);
  Receiver r(test_key());
  Sink sink;
  feed(r, w, 0, 10, 0, sink, {2, 3, 7});
  CHECK(sink.got.size() == 7);
  CHECK(!r.next_deadline());
  CHECK(r.stats().lost == 3);
  CHECK(r.stats().unrecovered == 3);
  CHECK(r.stats().held_max == 0);
  // An unprotected datagram also ends the holds of protected ones before it.
  Wire p = Wire::make(100, 8, 8, 0.25);
  Receiver q(test_key());
  Sink s2;
  feed(q, p, 100, 104, 0, s2, {101});
  CHECK(s2.got.size() == 1);
  q.on_data(data_datagram(104, false, packet_of(5, 5)), 0, s2.deliver());
  CHECK(s2.got.size() == 4);
  CHECK(q.stats().unrecovered == 1);
}

TEST_CASE("fec receiver: reordering within a block is put right, duplicates dropped") {
  Wire w = Wire::make(0, 8, 8, 0.25);
  Receiver r(test_key());
  Sink sink;
  for (std::uint32_t s : {0u, 2u, 3u, 1u, 5u, 4u, 7u, 6u}) r.on_data(w.data(s), 0, sink.deliver());
  CHECK(sink.got == w.packets);
  CHECK(r.stats().reordered == 3);
  CHECK(r.stats().lost == 3);  // found missing when they were, before they came
  CHECK(r.stats().rebuilt == 0);
  CHECK(r.stats().unrecovered == 0);
  CHECK(r.stats().received == 8);
  for (const Bytes* p : w.parity_of(0)) r.on_parity(*p, 0, sink.deliver());
  r.on_data(w.data(6), 0, sink.deliver());
  r.on_data(w.data(0), 0, sink.deliver());
  CHECK(sink.got.size() == 8);
  CHECK(r.stats().duplicates == 2);
  CHECK(r.stats().received == 8);
  // A duplicate of a held one.
  Receiver q(test_key());
  Sink s2;
  feed(q, w, 0, 4, 0, s2, {1});
  q.on_data(w.data(3), 0, s2.deliver());
  CHECK(q.stats().duplicates == 1);
  q.on_data(w.data(1), 0, s2.deliver());
  CHECK(s2.got.size() == 4);
}

TEST_CASE("fec receiver: parity that comes before the data it covers") {
  Wire w = Wire::make(50, 4, 4, 0.5);  // m = 2
  Receiver r(test_key());
  Sink sink;
  r.on_data(w.data(50), 0, sink.deliver());
  r.on_parity(*w.parity_of(50)[0], 0, sink.deliver());  // 51..53 now a gap
  CHECK(r.stats().lost == 3);
  CHECK(r.next_deadline());
  r.on_data(w.data(52), 0, sink.deliver());
  r.on_data(w.data(53), 0, sink.deliver());  // 3 data + 1 parity: 51 rebuilt
  CHECK(sink.got == w.packets);
  CHECK(r.stats().rebuilt == 1);
  CHECK(r.stats().reordered == 2);
  r.on_data(w.data(51), 0, sink.deliver());
  CHECK(r.stats().duplicates == 1);
}

TEST_CASE("fec receiver: a restarted sender (a far jump) resynchronises") {
  Wire a = Wire::make(1000, 6, 8, 0.25);
  Wire b = Wire::make(1000 + (1u << 20), 3, 8, 0.25);
  Wire c = Wire::make(7, 3, 8, 0.25);  // far behind b
  Receiver r(test_key());
  Sink sink;
  feed(r, a, 1000, 1006, 0, sink, {1002});
  CHECK(sink.got.size() == 2);
  feed(r, b, 1000 + (1u << 20), 1003 + (1u << 20), 0, sink);
  // What was held came first (its gap given up), then the new sender's packets.
  CHECK(sink.got.size() == 5 + 3);
  CHECK(sink.got[4] == a.packets[5]);
  CHECK(sink.got[5] == b.packets[0]);
  CHECK(r.stats().unrecovered == 1);
  CHECK(r.stats().highest_seq == 1002 + (1u << 20));
  feed(r, c, 7, 10, 0, sink);
  CHECK(sink.got.size() == 11);
  CHECK(sink.got[10] == c.packets[2]);
  CHECK(r.stats().highest_seq == 9);
  CHECK(r.stats().lost == 1);
  // Within 1 << 16 behind, and older than anything remembered: stale, dropped.
  r.on_data(data_datagram(9 - 60000, true, packet_of(3, 3)), 0, sink.deliver());
  CHECK(r.stats().stale == 1);
  CHECK(sink.got.size() == 11);
}

TEST_CASE("fec receiver: a gap longer than the window is given up whole") {
  Receiver r(test_key(), {.hold = 0.005, .max_held = 100});
  Sink sink;
  r.on_data(data_datagram(0, true, packet_of(10, 0)), 0, sink.deliver());
  r.on_data(data_datagram(2, true, packet_of(10, 2)), 0, sink.deliver());
  r.on_data(data_datagram(20000, true, packet_of(10, 3)), 0, sink.deliver());
  CHECK(sink.got.size() == 3);
  CHECK(r.stats().lost == 1 + 19997);
  CHECK(r.stats().unrecovered == 1 + 19997);
  CHECK(!r.next_deadline());
  r.on_data(data_datagram(20001, true, packet_of(10, 4)), 0, sink.deliver());
  CHECK(sink.got.size() == 4);
}

TEST_CASE("fec receiver: max_held bounds the held packets, the oldest gap goes first") {
  Wire w = Wire::make(0, 40, 32, 0.125);
  Receiver r(test_key(), {.hold = 10, .max_held = 5});
  Sink sink;
  feed(r, w, 0, 12, 0, sink, {1, 4});
  // 2, 3 held behind 1; 5.. behind 4: at the sixth held packet gap 1 is given up.
  CHECK(r.stats().held_max <= 5);
  CHECK(r.stats().unrecovered >= 1);
  feed(r, w, 12, 40, 0, sink);
  CHECK(r.stats().held_max <= 5);
  r.on_timer(100, sink.deliver());
  CHECK(sink.got.size() == 38);
  std::vector<Bytes> want = w.packets;
  want.erase(want.begin() + 4);
  want.erase(want.begin() + 1);
  CHECK(sink.got == want);
}

TEST_CASE("fec receiver: parity with a flipped bit is rejected and counted; garbage too") {
  Wire w = Wire::make(0, 8, 8, 0.125);
  Receiver r(test_key());
  Sink sink;
  feed(r, w, 0, 8, 0, sink, {5});
  Bytes bad = *w.parity_of(0)[0];
  bad[20] ^= 0x10;
  r.on_parity(bad, 0, sink.deliver());
  CHECK(r.stats().parity_bad == 1);
  CHECK(r.stats().parity_in == 0);
  CHECK(sink.got.size() == 5);
  // A parity MAC'd with another key.
  crypto::Key other = test_key();
  other[3] ^= 1;
  auto genuine = wire::parse_parity(*w.parity_of(0)[0]);
  Bytes forged(wire::parity_size(genuine->symbol.size()));
  wire::encode_parity(*genuine, other, forged);
  r.on_parity(forged, 0, sink.deliver());
  CHECK(r.stats().parity_bad == 2);
  CHECK(r.stats().rebuilt == 0);
  r.on_parity(Bytes{0, 0, 0x46, 2, 1}, 0, sink.deliver());
  r.on_data(Bytes{0, 0, 0x46, 1, 1}, 0, sink.deliver());
  r.on_data(Bytes{0, 0, 0x46, 2, 0, 0, 0, 1}, 0, sink.deliver());
  r.on_data(Bytes{1, 2, 3}, 0, sink.deliver());
  CHECK(r.stats().malformed == 4);
  r.on_parity(*w.parity_of(0)[0], 0, sink.deliver());  // the genuine one still works
  CHECK(sink.got == w.packets);
  CHECK(r.stats().rebuilt == 1);
}

TEST_CASE("fec receiver: the REPORT carries the counters, MAC'd") {
  Wire w = Wire::make(0, 8, 8, 0.25);
  Receiver r(test_key());
  Sink sink;
  feed(r, w, 0, 8, 0, sink, {3, 6});
  r.on_parity(*w.parity_of(0)[0], 0, sink.deliver());
  r.on_parity(*w.parity_of(0)[1], 0, sink.deliver());
  auto report = r.report();
  auto parsed = wire::parse_report(report, test_key());
  REQUIRE(parsed);
  CHECK(*parsed == wire::Report{7, 6, 2, 2, 0});
  Receiver fresh(test_key());
  CHECK(wire::parse_report(fresh.report(), test_key()) == wire::Report{});
}

namespace {

// Sender -> lossy wire -> Receiver, with fake time, against an oracle.
struct Loss {
  double p_good = 0.02;  // loss in the good state
  double p_bad = 0.0;    // loss in the bad state (Gilbert-Elliott); 0: Bernoulli
  double to_bad = 0.0, to_good = 0.3;
  bool bad = false;
  bool lose(std::mt19937& rng) {
    std::uniform_real_distribution<double> u(0, 1);
    if (p_bad > 0) bad = bad ? u(rng) >= to_good : u(rng) < to_bad;
    return u(rng) < (bad ? p_bad : p_good);
  }
};

struct Endtoend {
  std::size_t packets = 3000;
  std::size_t max_data = 32;
  double r = 0.125;
  double dt = 0.0001;  // between packets
  std::uint32_t first = 0;
  Loss loss;
  unsigned seed = 1;
};

void run_endtoend(const Endtoend& e) {
  CAPTURE(e.max_data);
  CAPTURE(e.r);
  CAPTURE(e.dt);
  CAPTURE(e.seed);
  const double hold = 0.005;
  std::mt19937 rng(e.seed);
  Sender sender(test_key(), {.max_data = e.max_data, .max_block_age = 0.002, .first_seq = e.first});
  sender.set_redundancy(e.r);
  Receiver receiver(test_key(), {.hold = hold});

  std::vector<Bytes> sent;
  std::vector<bool> lost;
  std::vector<double> arrived;  // by data index
  struct BlockInfo {
    std::uint32_t first = 0;
    std::size_t k = 0, m = 0, parity_lost = 0;
  };
  std::map<std::uint32_t, BlockInfo> blocks;
  std::vector<Bytes> got;
  std::vector<double> got_at;
  double now = 0;
  Loss loss = e.loss;
  bool lossy = true;

  Receiver::Deliver deliver = [&](std::span<const std::uint8_t> p) {
    got.emplace_back(p.begin(), p.end());
    got_at.push_back(now);
  };
  Emit emit = [&](std::span<const std::uint8_t> d) {
    auto parity = wire::parse_parity(d);
    REQUIRE(parity);
    BlockInfo& b = blocks[parity->first];
    b.first = parity->first;
    b.k = parity->k;
    b.m = parity->m;
    if (lossy && loss.lose(rng))
      ++b.parity_lost;
    else
      receiver.on_parity(d, now, deliver);
  };
  std::vector<Bytes> pending;  // parity emitted by add(): sent after the data datagram
  Emit collect = [&](std::span<const std::uint8_t> d) { pending.emplace_back(d.begin(), d.end()); };

  std::uniform_int_distribution<std::size_t> size(1, 1472);
  std::size_t total = e.packets + 2 * e.max_data + 1;
  for (std::size_t i = 0; i < total; ++i) {
    if (i == e.packets) lossy = false;  // a clean tail shows every gap before it
    now = double(i) * e.dt;
    Bytes packet(size(rng));
    for (auto& b : packet) b = static_cast<std::uint8_t>(rng());
    std::uint8_t header[wire::kDataHeader];
    sender.add(packet, header, now, collect);
    Bytes d(header, header + wire::kDataHeader);
    d.insert(d.end(), packet.begin(), packet.end());
    REQUIRE(wire::parse_data(d)->seq == static_cast<std::uint32_t>(e.first + i));
    sent.push_back(packet);
    lost.push_back(lossy && loss.lose(rng));
    arrived.push_back(now);
    if (!lost.back()) receiver.on_data(d, now, deliver);
    for (const Bytes& p : pending) emit(p);
    pending.clear();
    sender.flush(now, i + 1 == total, emit);
    receiver.on_timer(now, deliver);
  }
  for (int step = 0; step < 100000 && receiver.next_deadline(); ++step) {
    now += e.dt;
    receiver.on_timer(now, deliver);
  }

  // The oracle.
  std::vector<bool> recoverable(total, true);
  for (const auto& [first, b] : blocks) {
    std::size_t data_lost = 0;
    for (std::size_t j = 0; j < b.k; ++j) data_lost += lost[first - e.first + j];
    if (data_lost + b.parity_lost > b.m)
      for (std::size_t j = 0; j < b.k; ++j) recoverable[first - e.first + j] = false;
  }
  std::vector<Bytes> want;
  std::vector<double> want_arrival;  // -1: rebuilt
  std::uint32_t n_lost = 0, n_rebuilt = 0, n_unrecovered = 0;
  for (std::size_t i = 0; i < total; ++i) {
    if (lost[i]) {
      ++n_lost;
      if (!recoverable[i]) {
        ++n_unrecovered;
        continue;
      }
      ++n_rebuilt;
    }
    want.push_back(sent[i]);
    want_arrival.push_back(lost[i] ? -1 : arrived[i]);
  }
  const auto& st = receiver.stats();
  CHECK(n_lost > 0);
  CHECK(n_rebuilt > 0);
  CHECK(st.received == total - n_lost);
  CHECK(st.lost == n_lost);
  CHECK(st.rebuilt == n_rebuilt);
  CHECK(st.unrecovered == n_unrecovered);
  CHECK(st.highest_seq == static_cast<std::uint32_t>(e.first + total - 1));
  CHECK(st.late == 0);
  CHECK(st.duplicates == 0);
  CHECK(st.reordered == 0);
  CHECK(st.parity_bad == 0);
  CHECK(st.malformed == 0);
  REQUIRE(got.size() == want.size());
  std::size_t wrong = 0, too_late = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    wrong += got[i] != want[i];
    // A held packet waits for gaps seen no later than itself: at most hold (+ the timer step).
    if (want_arrival[i] >= 0 && got_at[i] > want_arrival[i] + hold + e.dt + 1e-9) ++too_late;
  }
  CHECK(wrong == 0);
  CHECK(too_late == 0);
  CHECK(!receiver.next_deadline());
}

}  // namespace

TEST_CASE("fec end to end: Bernoulli loss of data and parity, against an oracle") {
  // Blocks closed full (fast packets) and by age (slow ones), various block sizes and r.
  run_endtoend({.max_data = 32, .r = 0.125, .dt = 0.00002, .loss = {.p_good = 0.02}, .seed = 1});
  run_endtoend({.max_data = 32, .r = 0.125, .dt = 0.0002, .loss = {.p_good = 0.03}, .seed = 2});
  run_endtoend({.max_data = 8, .r = 0.25, .dt = 0.00005, .loss = {.p_good = 0.05}, .seed = 3});
  run_endtoend({.max_data = 64, .r = 0.1, .dt = 0.00001, .loss = {.p_good = 0.02}, .seed = 4});
  run_endtoend({.max_data = 16, .r = 0.5, .dt = 0.0001, .loss = {.p_good = 0.1}, .seed = 5});
  run_endtoend({.max_data = 1, .r = 0.5, .dt = 0.0001, .loss = {.p_good = 0.05}, .seed = 6});
  run_endtoend({.packets = 2000,
                .max_data = 32,
                .r = 0.25,
                .dt = 0.00003,
                .first = 0xfffffc00,  // wraps
                .loss = {.p_good = 0.04},
                .seed = 7});
}

TEST_CASE("fec end to end: burst loss (Gilbert-Elliott), against an oracle") {
  Loss burst{.p_good = 0.002, .p_bad = 0.6, .to_bad = 0.01, .to_good = 0.25};
  run_endtoend(
      {.packets = 5000, .max_data = 32, .r = 0.125, .dt = 0.00002, .loss = burst, .seed = 11});
  run_endtoend(
      {.packets = 5000, .max_data = 32, .r = 0.25, .dt = 0.0001, .loss = burst, .seed = 12});
  run_endtoend(
      {.packets = 5000, .max_data = 64, .r = 0.25, .dt = 0.00001, .loss = burst, .seed = 13});
  run_endtoend({.packets = 5000, .max_data = 8, .r = 0.5, .dt = 0.0003, .loss = burst, .seed = 14});
}

TEST_CASE("fec end to end: no allocation per packet in steady state") {
  Sender sender(test_key(), {.max_data = 32, .max_block_age = 0.002, .first_seq = 1});
  sender.set_redundancy(0.125);
  Receiver receiver(test_key(), {.hold = 0.005});
  std::mt19937 rng(3);
  std::vector<Bytes> packets(97);
  for (Bytes& p : packets) {
    p.resize(std::uniform_int_distribution<std::size_t>(1, 1472)(rng));
    for (auto& b : p) b = static_cast<std::uint8_t>(rng());
  }
  Bytes datagram;
  datagram.reserve(wire::kDataHeader + 1472);
  std::vector<Bytes> parity(wire::kMaxParity, Bytes(2048));
  std::array<std::size_t, wire::kMaxParity> parity_len{};
  std::size_t parity_count = 0, parity_seen = 0;
  std::uint64_t delivered = 0, bytes = 0;
  double now = 0;
  Receiver::Deliver deliver = [&](std::span<const std::uint8_t> p) {
    ++delivered;
    bytes += p.size();
  };
  // Per block of 32: data 3 and 20 lost and parity 1 (rebuilt); every 7th block also loses
  // data 9 and 25 (unrecoverable: held until the deadline); every 11th block loses its parity.
  std::size_t block = 0, in_block = 0;
  auto keep_parity = [&]() { return ++parity_seen % 4 != 2 && block % 11 != 5; };
  Emit emit = [&](std::span<const std::uint8_t> d) {
    if (keep_parity()) receiver.on_parity(d, now, deliver);
  };
  Emit collect = [&](std::span<const std::uint8_t> d) {
    std::copy(d.begin(), d.end(), parity[parity_count].begin());
    parity_len[parity_count++] = d.size();
  };
  auto run = [&](std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      now += 0.00003;
      const Bytes& packet = packets[i % packets.size()];
      datagram.resize(wire::kDataHeader);
      sender.add(packet, datagram.data(), now, collect);
      datagram.insert(datagram.end(), packet.begin(), packet.end());
      bool lose =
          in_block == 3 || in_block == 20 || (block % 7 == 3 && (in_block == 9 || in_block == 25));
      if (!lose) receiver.on_data(datagram, now, deliver);
      for (std::size_t p = 0; p < parity_count; ++p)
        if (keep_parity()) receiver.on_parity({parity[p].data(), parity_len[p]}, now, deliver);
      if (parity_count) {
        parity_count = 0;
        ++block;
        in_block = 0;
      } else {
        ++in_block;
      }
      sender.flush(now, false, emit);
      receiver.on_timer(now, deliver);
    }
  };
  run(32 * 300);  // warm-up: buffers grow to their working size
#if FEC_TEST_COUNT_ALLOCATIONS
  std::uint64_t before = g_allocations.load();
#endif
  std::uint64_t delivered_before = delivered;
  run(32 * 1000);
#if FEC_TEST_COUNT_ALLOCATIONS
  CHECK(g_allocations.load() - before == 0);
#endif
  CHECK(delivered - delivered_before > 30000);
  CHECK(receiver.stats().rebuilt > 1000);
  CHECK(receiver.stats().unrecovered > 100);
  CHECK(receiver.stats().held_max > 0);
  CHECK(bytes > 0);
}

TEST_CASE("fec end to end: speed of Sender and Receiver (k=32, m=4, 1400 bytes)" *
          doctest::skip()) {
  using Clock = std::chrono::steady_clock;
  Sender sender(test_key(), {.max_data = 32, .max_block_age = 1.0, .first_seq = 1});
  sender.set_redundancy(0.125);
  Receiver receiver(test_key());
  Bytes packet(1400, 0x5a), datagram;
  datagram.reserve(1500);
  std::vector<Bytes> parity(wire::kMaxParity, Bytes(2048));
  std::array<std::size_t, wire::kMaxParity> parity_len{};
  std::size_t parity_count = 0;
  std::uint64_t delivered = 0;
  Receiver::Deliver deliver = [&](std::span<const std::uint8_t>) { ++delivered; };
  Emit collect = [&](std::span<const std::uint8_t> d) {
    std::copy(d.begin(), d.end(), parity[parity_count].begin());
    parity_len[parity_count++] = d.size();
  };
  for (bool lossy : {false, true}) {
    std::size_t n = 32 * 20000;
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i) {
      datagram.resize(wire::kDataHeader);
      sender.add(packet, datagram.data(), 0, collect);
      datagram.insert(datagram.end(), packet.begin(), packet.end());
      // Lossy: 4 of every 32 data lost, all rebuilt.
      if (!lossy || i % 8 != 3) receiver.on_data(datagram, 0, deliver);
      for (std::size_t p = 0; p < parity_count; ++p)
        receiver.on_parity({parity[p].data(), parity_len[p]}, 0, deliver);
      parity_count = 0;
    }
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    MESSAGE(std::string(lossy ? "4 of 32 lost, rebuilt: " : "no loss: "),
            double(n) * 1400 / s / 1e6, " MB/s through Sender + Receiver (", s / double(n) * 1e9,
            " ns per packet)");
  }
}
