#include "src/base/checksum.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace {

// RFC 1071 as written: big-endian 16-bit words, the odd last byte padded, folded as it goes.
std::uint32_t naive_sum(const std::uint8_t* p, std::size_t n, std::uint32_t acc = 0) {
  for (std::size_t i = 0; i < n; i += 2) {
    acc += static_cast<std::uint32_t>(p[i] << 8) + (i + 1 < n ? p[i + 1] : 0u);
    acc = (acc & 0xffff) + (acc >> 16);
  }
  return acc;
}

std::uint16_t naive_fold(std::uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<std::uint16_t>(acc);
}

}  // namespace

TEST_CASE("checksum: matches the naive sum for every length and alignment") {
  std::mt19937 rng(1071);
  std::vector<std::uint8_t> buf(1600);
  for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
  for (int round = 0; round < 2000; ++round) {
    const std::size_t at = rng() % 16;  // odd and even starts
    const std::size_t n = round < 64 ? static_cast<std::size_t>(round) : rng() % (buf.size() - 16);
    const std::uint8_t* p = buf.data() + at;
    const std::uint16_t want = naive_fold(naive_sum(p, n));
    CHECK(base::checksum::fold(base::checksum::partial(p, n)) == want);
    CHECK(base::checksum::add({p, n}) == want);
    CHECK(base::checksum::internet({p, n}) == static_cast<std::uint16_t>(~want));
    const std::uint32_t initial = static_cast<std::uint32_t>(rng() % 0x40000);
    CHECK(base::checksum::add({p, n}, initial) == naive_fold(naive_sum(p, n, 0) + initial));
  }
}

TEST_CASE("checksum: incremental sums over even-length parts equal the whole") {
  std::mt19937 rng(2);
  std::vector<std::uint8_t> buf(3000);
  for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
  for (int round = 0; round < 500; ++round) {
    const std::size_t at = rng() % 8;
    const std::size_t n = rng() % 2900;
    const std::size_t cut = (rng() % (n + 1)) & ~std::size_t{1};  // the first part even
    const std::uint8_t* p = buf.data() + at;
    const std::uint16_t whole = base::checksum::add({p, n});
    std::uint64_t acc = base::checksum::partial(p, cut);
    CHECK(base::checksum::fold(base::checksum::partial(p + cut, n - cut, acc)) == whole);
    CHECK(base::checksum::add({p + cut, n - cut}, base::checksum::add({p, cut})) == whole);
  }
}

TEST_CASE("checksum: fixed values") {
  // RFC 1071 section 3's example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
  const std::uint8_t rfc[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  CHECK(base::checksum::add(rfc) == 0xddf2);
  CHECK(base::checksum::internet(rfc) == 0x220d);
  CHECK(base::checksum::add({}) == 0);
  CHECK(base::checksum::internet({}) == 0xffff);
  const std::uint8_t ones[] = {0xff, 0xff, 0xff, 0xff};
  CHECK(base::checksum::add(ones) == 0xffff);
  // An IPv4 header with its checksum in place sums to 0xffff: internet() is 0.
  const std::uint8_t ip[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                             0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  CHECK(base::checksum::internet(ip) == 0);
}
