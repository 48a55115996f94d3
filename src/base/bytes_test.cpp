#include "src/base/bytes.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <random>
#include <vector>

namespace {

// Written out byte by byte, independently of bytes.hpp.
std::uint64_t naive_load(const std::uint8_t* p, std::size_t width) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < width; ++i) v = v << 8 | p[i];
  return v;
}

constexpr std::array<std::uint8_t, 8> stored64(std::uint64_t v) {
  std::array<std::uint8_t, 8> out{};
  base::store_be64(out.data(), v);
  return out;
}

}  // namespace

TEST_CASE("bytes: big-endian loads and stores at every offset") {
  const std::uint8_t b[] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe};
  CHECK(base::load_be16(b) == 0x0123);
  CHECK(base::load_be32(b) == 0x01234567u);
  CHECK(base::load_be64(b) == 0x0123456789abcdefull);
  CHECK(base::load_be16(std::span<const std::uint8_t>(b), 7) == 0xeffe);
  CHECK(base::load_be32(std::span<const std::uint8_t>(b), 5) == 0xabcdeffeu);

  std::mt19937_64 rng(7);
  std::vector<std::uint8_t> buf(32);
  for (int round = 0; round < 200; ++round) {
    for (auto& x : buf) x = static_cast<std::uint8_t>(rng());
    const std::size_t at = rng() % 17;
    const std::uint8_t* p = buf.data() + at;
    CHECK(base::load_be16(p) == naive_load(p, 2));
    CHECK(base::load_be32(p) == naive_load(p, 4));
    CHECK(base::load_be64(p) == naive_load(p, 8));

    const std::uint64_t v = rng();
    std::vector<std::uint8_t> before = buf;
    base::store_be64(buf.data() + at, v);
    CHECK(naive_load(buf.data() + at, 8) == v);
    base::store_be32(std::span<std::uint8_t>(buf), at, static_cast<std::uint32_t>(v));
    CHECK(naive_load(buf.data() + at, 4) == static_cast<std::uint32_t>(v));
    base::store_be16(buf.data() + at + 4, static_cast<std::uint16_t>(v));
    CHECK(naive_load(buf.data() + at + 4, 2) == static_cast<std::uint16_t>(v));
    // Nothing outside [at, at + 8) is touched.
    for (std::size_t i = 0; i < buf.size(); ++i) {
      if (i < at || i >= at + 8) CHECK(buf[i] == before[i]);
    }
  }
}

TEST_CASE("bytes: usable in constant expressions") {
  constexpr auto b = stored64(0x0102030405060708ull);
  static_assert(b[0] == 1 && b[7] == 8);
  static_assert(base::load_be64(b.data()) == 0x0102030405060708ull);
  static_assert(base::load_be32(b.data() + 1) == 0x02030405u);
  static_assert(base::load_be16(b.data() + 6) == 0x0708);
  CHECK(base::load_be64(b.data()) == 0x0102030405060708ull);
}
