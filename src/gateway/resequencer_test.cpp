#include "src/gateway/resequencer.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "src/base/bytes.hpp"

namespace {

using gateway::Resequencer;

// Packets are 4 bytes: their seq, so the sink's output can be read back.
struct Out {
  std::vector<std::uint32_t> seqs;
  Resequencer::Sink sink() {
    return [this](std::span<const std::uint8_t> p, const std::optional<tun::VnetHdr>&) {
      seqs.push_back(base::load_be32(p.data()));
    };
  }
};

std::array<std::uint8_t, 4> packet(std::uint32_t seq) {
  std::array<std::uint8_t, 4> p{};
  base::store_be32(p.data(), seq);
  return p;
}

// seqs first..first+n-1, each moved by up to `spread` places (a random permutation of bounded
// displacement, as two paths of different delay make).
std::vector<std::uint32_t> shuffled(std::mt19937& rng, std::uint32_t first, std::size_t n,
                                    std::size_t spread) {
  std::vector<std::pair<double, std::uint32_t>> keyed;
  std::uniform_real_distribution<double> jitter(0, static_cast<double>(spread));
  for (std::size_t i = 0; i < n; ++i)
    keyed.push_back({static_cast<double>(i) + jitter(rng), first + static_cast<std::uint32_t>(i)});
  std::sort(keyed.begin(), keyed.end());
  std::vector<std::uint32_t> out;
  for (auto& [k, seq] : keyed) out.push_back(seq);
  return out;
}

}  // namespace

TEST_CASE("resequencer: any bounded reordering comes out in order, each packet once") {
  std::mt19937 rng(20261207);
  for (std::size_t spread : {1, 2, 10, 100, 1000}) {
    CAPTURE(spread);
    Out out;
    Resequencer r({}, out.sink());
    auto order = shuffled(rng, 0, 5000, spread);
    for (std::uint32_t seq : order) r.arrive(7, 1, seq, packet(seq), std::nullopt, 1.0);
    std::vector<std::uint32_t> want(5000);
    for (std::uint32_t i = 0; i < 5000; ++i) want[i] = i;
    CHECK(out.seqs == want);
    CHECK_FALSE(r.holding());
    CHECK(r.stats().in_order + r.stats().held == 5000);
    CHECK(r.stats().gaps_skipped == 0);
  }
}

TEST_CASE("resequencer: stripes and peers are apart; seq wraps around 2^32") {
  Out out;
  Resequencer r({}, out.sink());
  // Stripe 1 of peer 0 waits for its seq 0; stripe 1 of peer 1 and stripe 2 of peer 0 do not.
  r.arrive(0, 1, 1, packet(1), std::nullopt, 0);
  r.arrive(1, 1, 0, packet(100), std::nullopt, 0);
  r.arrive(0, 2, 0, packet(200), std::nullopt, 0);
  CHECK(out.seqs == std::vector<std::uint32_t>{100, 200});
  r.arrive(0, 1, 0, packet(0), std::nullopt, 0);
  CHECK(out.seqs == std::vector<std::uint32_t>{100, 200, 0, 1});
  // A stripe first seen far into its life starts where it is, and runs across the wrap.
  out.seqs.clear();
  const std::uint32_t near_end = 0xfffffffe;
  for (std::uint32_t seq : {near_end + 1, near_end, near_end + 3, near_end + 2})
    r.arrive(0, 3, seq, packet(seq), std::nullopt, 0);
  // Started at the first seen; the one before it is late, the rest in order across the wrap.
  CHECK(out.seqs == std::vector<std::uint32_t>{near_end + 1, near_end, near_end + 2, near_end + 3});
  CHECK(r.stats().late == 1);
  out.seqs.clear();
  r.arrive(0, 4, near_end, packet(near_end), std::nullopt, 0);
  for (std::uint32_t seq : {near_end + 2, near_end + 3, near_end + 1})
    r.arrive(0, 4, seq, packet(seq), std::nullopt, 0);
  CHECK(out.seqs == std::vector<std::uint32_t>{near_end, near_end + 1, near_end + 2, near_end + 3});
}

TEST_CASE("resequencer: a gap older than hold is skipped; what then comes late leaves at once") {
  Out out;
  Resequencer r({.hold = 0.25}, out.sink());  // times below are exact in binary
  for (std::uint32_t seq : {0u, 2u, 3u}) r.arrive(0, 1, seq, packet(seq), std::nullopt, 1.0);
  CHECK(out.seqs == std::vector<std::uint32_t>{0});
  r.expire(1.125);
  CHECK(out.seqs == std::vector<std::uint32_t>{0});
  r.expire(1.25);
  CHECK(out.seqs == std::vector<std::uint32_t>{0, 2, 3});
  CHECK(r.stats().gaps_skipped == 1);
  CHECK(r.stats().packets_skipped == 1);
  r.arrive(0, 1, 1, packet(1), std::nullopt, 1.5);  // the skipped one, late
  r.arrive(0, 1, 4, packet(4), std::nullopt, 1.5);
  r.arrive(0, 1, 1, packet(1), std::nullopt, 1.5);  // and again: a duplicate
  r.arrive(0, 1, 3, packet(3), std::nullopt, 1.5);  // one that left in order: a duplicate
  CHECK(out.seqs == std::vector<std::uint32_t>{0, 2, 3, 1, 4});
  CHECK(r.stats().late == 1);
  CHECK(r.stats().duplicates == 2);
  // Each gap has its own deadline, from the arrival of the first packet after it.
  out.seqs.clear();
  r.arrive(0, 1, 6, packet(6), std::nullopt, 2.0);
  r.arrive(0, 1, 8, packet(8), std::nullopt, 2.125);
  r.expire(2.25);  // the gap at 5 is 0.25 s old: 6 leaves; the gap at 7 waits until 2.375
  CHECK(out.seqs == std::vector<std::uint32_t>{6});
  r.expire(2.3125);
  CHECK(out.seqs == std::vector<std::uint32_t>{6});
  r.expire(2.375);
  CHECK(out.seqs == std::vector<std::uint32_t>{6, 8});
  CHECK_FALSE(r.holding());
}

TEST_CASE("resequencer: against an oracle, with packets lost, duplicated and reordered") {
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    Out out;
    Resequencer r({.hold = 0.05, .window = 256, .max_bytes = 1 << 20}, out.sink());
    auto order = shuffled(rng, 1000u * static_cast<std::uint32_t>(round), 3000, 50);
    std::vector<std::uint32_t> arrived;
    double now = 0;
    for (std::uint32_t seq : order) {
      now += 0.001;
      if (rng() % 100 == 0) continue;  // lost for good
      r.arrive(1, 9, seq, packet(seq), std::nullopt, now);
      arrived.push_back(seq);
      if (rng() % 50 == 0) r.arrive(1, 9, seq, packet(seq), std::nullopt, now);  // a duplicate
      r.expire(now);
    }
    r.expire(now + 1);
    CHECK_FALSE(r.holding());
    // Each packet that arrived leaves once; lost ones only open gaps, so none is late unless it
    // came after its gap was given up (then out of order, counted late).
    std::vector<std::uint32_t> sorted_out = out.seqs, sorted_in = arrived;
    std::sort(sorted_out.begin(), sorted_out.end());
    std::sort(sorted_in.begin(), sorted_in.end());
    CHECK(sorted_out == sorted_in);
    std::size_t inversions = 0;
    for (std::size_t i = 1; i < out.seqs.size(); ++i) inversions += out.seqs[i] < out.seqs[i - 1];
    CHECK(inversions <= r.stats().late);
    // The start is 1000 * round, not 0: the first arrival decides (within the window of 0 only
    // for round 0).
    if (round > 0) CHECK(r.stats().late > 0);
  }
}

TEST_CASE("resequencer: a stripe never holds more than its window or its bytes") {
  Out out;
  Resequencer r({.hold = 10, .window = 16, .max_bytes = 40}, out.sink());
  // Seq 0 never comes: 1..10 wait (40 bytes); the 11th packet's bytes force the gap to be given up.
  for (std::uint32_t seq = 1; seq <= 10; ++seq) r.arrive(0, 1, seq, packet(seq), std::nullopt, 0);
  CHECK(r.held_packets() == 10);
  CHECK(out.seqs.empty());
  r.arrive(0, 1, 12, packet(12), std::nullopt, 0);
  CHECK(out.seqs == std::vector<std::uint32_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  CHECK(r.held_packets() == 1);
  // Beyond the window: everything held leaves, and so does the far one.
  r.arrive(0, 1, 100, packet(100), std::nullopt, 0);
  CHECK(out.seqs.back() == 100);
  CHECK(out.seqs[out.seqs.size() - 2] == 12);
  CHECK_FALSE(r.holding());
}

TEST_CASE("resequencer: at most max_stripes; idle ones are forgotten; a peer's go at once") {
  Out out;
  Resequencer r({.hold = 10, .max_stripes = 4, .idle = 60}, out.sink());
  for (std::uint32_t stripe = 0; stripe < 4; ++stripe)
    r.arrive(0, stripe, 1, packet(stripe), std::nullopt, stripe);  // each waits for its seq 0
  CHECK(r.stripes() == 4);
  CHECK(r.held_packets() == 4);
  r.arrive(0, 4, 0, packet(4), std::nullopt, 10);  // a fifth: the idlest (stripe 0) goes, in order
  CHECK(r.stripes() == 4);
  CHECK(out.seqs == std::vector<std::uint32_t>{0, 4});
  r.release_peer(0);
  CHECK(r.stripes() == 0);
  CHECK(out.seqs.size() == 5);
  r.arrive(1, 0, 0, packet(0), std::nullopt, 100);
  r.expire(159);
  CHECK(r.stripes() == 1);
  r.expire(160);
  CHECK(r.stripes() == 0);
}

TEST_CASE("resequencer: all stripes together hold no more than max_total_bytes") {
  Out out;
  Resequencer r({.hold = 10, .window = 64, .max_bytes = 40, .max_total_bytes = 100}, out.sink());
  // Stripes 1 and 2 wait for their seq 0 with 40 bytes each (10 packets of 4), stripe 3 with 20.
  for (std::uint32_t stripe = 1; stripe <= 3; ++stripe)
    for (std::uint32_t seq = 1; seq <= (stripe == 3 ? 5u : 10u); ++seq)
      r.arrive(0, stripe, seq, packet(seq), std::nullopt, 0);
  CHECK(r.held_bytes() == 100);
  CHECK(out.seqs.empty());
  // A fourth stripe, holding nothing, finds no room: its packet goes through past its gap.
  r.arrive(0, 4, 5, packet(5), std::nullopt, 0);
  CHECK(out.seqs == std::vector<std::uint32_t>{5});
  // Stripe 3's next packet finds no room either: it gives up its gap, 1..6 leave.
  r.arrive(0, 3, 6, packet(6), std::nullopt, 0);
  CHECK(out.seqs == std::vector<std::uint32_t>{5, 1, 2, 3, 4, 5, 6});
  CHECK(r.held_bytes() == 80);
}
