// Erasure code tests: every erasure pattern of up to m symbols (all of them where there are few,
// random samples where there are many) rebuilds the data byte for byte; more than m erasures are
// refused. A speed measurement is skipped unless asked for (--no-skip).

#include "src/fec/code.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <vector>

namespace {

using Bytes = std::vector<std::uint8_t>;

struct Block {
  std::vector<Bytes> data, parity;
};

Block make_block(fec::Codec& codec, std::size_t n, std::size_t m, std::size_t len,
                 std::mt19937& rng) {
  Block b;
  b.data.assign(n, Bytes(len));
  b.parity.assign(m, Bytes(len));
  for (Bytes& d : b.data)
    for (auto& byte : d) byte = static_cast<std::uint8_t>(rng());
  std::vector<const std::uint8_t*> in;
  std::vector<std::uint8_t*> out;
  for (Bytes& d : b.data) in.push_back(d.data());
  for (Bytes& p : b.parity) out.push_back(p.data());
  codec.encode(in, out, len);
  return b;
}

// Decodes b with the symbols at `erased` (indexes into data then parity) missing; true when
// every erased data symbol came back exactly (and nothing else was written).
bool rebuilds(fec::Codec& codec, const Block& b, const std::vector<std::size_t>& erased,
              std::size_t len, bool* refused = nullptr) {
  std::size_t n = b.data.size(), m = b.parity.size();
  std::vector<const std::uint8_t*> data(n), parity(m);
  for (std::size_t i = 0; i < n; ++i) data[i] = b.data[i].data();
  for (std::size_t p = 0; p < m; ++p) parity[p] = b.parity[p].data();
  std::vector<Bytes> out(n);
  std::vector<std::uint8_t*> outs(n, nullptr);
  for (std::size_t e : erased) {
    if (e < n) {
      data[e] = nullptr;
      out[e].assign(len + 1, 0xee);  // one guard byte
      outs[e] = out[e].data();
    } else {
      parity[e - n] = nullptr;
    }
  }
  bool ok = codec.decode(data, parity, outs, len);
  if (refused) *refused = !ok;
  if (!ok) {
    for (std::size_t i = 0; i < n; ++i)
      if (outs[i])
        for (std::size_t j = 0; j <= len; ++j)
          if (out[i][j] != 0xee) return false;  // written although refused
    return false;
  }
  for (std::size_t e : erased)
    if (e < n) {
      if (std::memcmp(out[e].data(), b.data[e].data(), len) != 0) return false;
      if (out[e][len] != 0xee) return false;
    }
  return true;
}

// Calls f with every subset of {0..total-1} of at most max_size elements.
template <class F>
void subsets(std::size_t total, std::size_t max_size, std::vector<std::size_t>& cur,
             std::size_t from, F&& f) {
  f(cur);
  if (cur.size() == max_size) return;
  for (std::size_t i = from; i < total; ++i) {
    cur.push_back(i);
    subsets(total, max_size, cur, i + 1, f);
    cur.pop_back();
  }
}

double binomial_sum(std::size_t total, std::size_t max_size) {
  double sum = 0, c = 1;
  for (std::size_t e = 0; e <= max_size; ++e) {
    sum += c;
    c = c * double(total - e) / double(e + 1);
  }
  return sum;
}

std::vector<std::size_t> random_subset(std::size_t total, std::size_t size, std::mt19937& rng) {
  std::vector<std::size_t> all(total);
  for (std::size_t i = 0; i < total; ++i) all[i] = i;
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(size);
  return all;
}

}  // namespace

TEST_CASE("fec code: every erasure pattern of at most m symbols rebuilds the data exactly") {
  fec::Codec codec;
  std::mt19937 rng(1234);
  const std::size_t lens[] = {2, 17, 33, 64, 301, 1402};
  std::size_t which = 0;
  for (std::size_t n : {1, 2, 3, 8, 32, 64}) {
    for (std::size_t m : {1, 2, 4, 8, 16}) {
      CAPTURE(n);
      CAPTURE(m);
      std::size_t len = lens[which++ % std::size(lens)];
      CAPTURE(len);
      Block b = make_block(codec, n, m, len, rng);
      std::size_t patterns = 0, failures = 0;
      if (binomial_sum(n + m, m) <= 6000) {
        std::vector<std::size_t> cur;
        subsets(n + m, m, cur, 0, [&](const std::vector<std::size_t>& erased) {
          ++patterns;
          if (!rebuilds(codec, b, erased, len)) ++failures;
        });
      } else {
        for (int i = 0; i < 400; ++i) {
          std::size_t size = i % 2 ? m : std::uniform_int_distribution<std::size_t>(1, m)(rng);
          ++patterns;
          if (!rebuilds(codec, b, random_subset(n + m, size, rng), len)) ++failures;
        }
        // All erasures among the data, as many as possible.
        for (int i = 0; i < 50; ++i) {
          ++patterns;
          if (!rebuilds(codec, b, random_subset(n, std::min(n, m), rng), len)) ++failures;
        }
      }
      CHECK(failures == 0);
      CHECK(patterns > 0);
    }
  }
}

TEST_CASE("fec code: more than m erasures are refused, nothing written") {
  fec::Codec codec;
  std::mt19937 rng(99);
  for (std::size_t n : {1, 2, 3, 8, 32, 64}) {
    for (std::size_t m : {1, 2, 4, 8, 16}) {
      CAPTURE(n);
      CAPTURE(m);
      Block b = make_block(codec, n, m, 40, rng);
      for (int i = 0; i < 40; ++i) {
        std::size_t size = std::uniform_int_distribution<std::size_t>(m + 1, n + m)(rng);
        auto erased = random_subset(n + m, size, rng);
        bool any_data = false;
        for (std::size_t e : erased) any_data |= e < n;
        bool refused = false;
        CHECK(!rebuilds(codec, b, erased, 40, &refused));
        CHECK(refused);
        CHECK(any_data);  // more than m erasures always hit the data
      }
    }
  }
}

TEST_CASE("fec code: parity p depends on n and p only; only requested symbols are rebuilt") {
  fec::Codec codec;
  std::mt19937 rng(5);
  Block full = make_block(codec, 10, 16, 100, rng);
  for (std::size_t m : {1, 3, 7}) {
    std::vector<const std::uint8_t*> in;
    for (Bytes& d : full.data) in.push_back(d.data());
    std::vector<Bytes> parity(m, Bytes(100));
    std::vector<std::uint8_t*> out;
    for (Bytes& p : parity) out.push_back(p.data());
    codec.encode(in, out, 100);
    for (std::size_t p = 0; p < m; ++p) CHECK(parity[p] == full.parity[p]);
  }
  // Two data symbols erased, only one of them asked for.
  std::vector<const std::uint8_t*> data, parity;
  for (Bytes& d : full.data) data.push_back(d.data());
  for (Bytes& p : full.parity) parity.push_back(p.data());
  data[2] = data[7] = nullptr;
  Bytes seven(100, 0);
  std::vector<std::uint8_t*> outs(10, nullptr);
  outs[7] = seven.data();
  CHECK(codec.decode(data, parity, outs, 100));
  CHECK(seven == full.data[7]);
  // Nothing erased: nothing to do, and that is a success.
  for (std::size_t i = 0; i < 10; ++i) data[i] = full.data[i].data();
  CHECK(codec.decode(data, parity, std::vector<std::uint8_t*>(10, nullptr), 100));
}

TEST_CASE("fec code: speed (k=32, m=4, 1400-byte packets)" * doctest::skip()) {
  using Clock = std::chrono::steady_clock;
  fec::Codec codec;
  std::mt19937 rng(7);
  const std::size_t n = 32, m = 4, len = 1402;
  Block b = make_block(codec, n, m, len, rng);
  std::vector<const std::uint8_t*> in;
  std::vector<std::uint8_t*> out;
  for (Bytes& d : b.data) in.push_back(d.data());
  for (Bytes& p : b.parity) out.push_back(p.data());
  const double block_bytes = double(n * 1400);
  auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };

  int rounds = 20000;
  auto t0 = Clock::now();
  for (int i = 0; i < rounds; ++i) codec.encode(in, out, len);
  double enc = seconds(Clock::now() - t0);
  MESSAGE("encode: ", block_bytes * rounds / enc / 1e6, " MB/s of data (", enc / rounds * 1e6,
          " us per block)");

  for (std::size_t lost : {1, 4}) {
    std::vector<const std::uint8_t*> data(in.begin(), in.end());
    std::vector<const std::uint8_t*> parity(out.begin(), out.end());
    std::vector<Bytes> rebuilt(n, Bytes(len));
    std::vector<std::uint8_t*> outs(n, nullptr);
    for (std::size_t e = 0; e < lost; ++e) {
      data[e * 7] = nullptr;
      outs[e * 7] = rebuilt[e * 7].data();
    }
    int decodes = 5000;
    t0 = Clock::now();
    for (int i = 0; i < decodes; ++i) REQUIRE(codec.decode(data, parity, outs, len));
    double dec = seconds(Clock::now() - t0);
    MESSAGE("decode, ", lost, " lost: ", block_bytes * decodes / dec / 1e6, " MB/s of data (",
            dec / decodes * 1e6, " us per block)");
  }
}
