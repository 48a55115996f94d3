#pragma once
// base::checksum: the Internet checksum (RFC 1071), the one's-complement sum of data as
// big-endian 16-bit words, an odd last byte padded with zero.
//
// The sum is taken over native-order words, eight bytes per step into a 64-bit accumulator, and
// converted to big-endian once folded: the one's-complement sum commutes with byte swapping
// (RFC 1071 2.B). Defined here, inline, because the packet paths call it on a few bytes of
// constant length (IP headers, pseudo-headers) where the call would cost more than the sum.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace base::checksum {

// Adds data to acc, an unfolded native-order partial sum (0 to start). Chain calls to sum
// discontiguous parts: every part but the last must have an even length. Exact for at least
// 2^32 bytes in all.
inline std::uint64_t partial(const std::uint8_t* p, std::size_t n, std::uint64_t acc = 0) {
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    acc += (v & 0xffffffffu) + (v >> 32);
    p += 8;
    n -= 8;
  }
  if (n >= 4) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    acc += v;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    std::uint16_t v;
    std::memcpy(&v, p, 2);
    acc += v;
    p += 2;
    n -= 2;
  }
  if (n) {
    std::uint16_t v = 0;
    std::memcpy(&v, p, 1);  // the odd last byte is the high byte of a zero-padded word
    acc += v;
  }
  return acc;
}
inline std::uint64_t partial(std::span<const std::uint8_t> data, std::uint64_t acc = 0) {
  return partial(data.data(), data.size(), acc);
}

// Folds a partial() sum to 16 bits and returns it as a big-endian value (not complemented);
// 0 only when everything summed was 0.
inline std::uint16_t fold(std::uint64_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  auto v = static_cast<std::uint16_t>(acc);
  if constexpr (std::endian::native == std::endian::little)
    v = static_cast<std::uint16_t>(v >> 8 | v << 8);
  return v;
}

// The folded sum (not complemented) of data plus `initial`, a big-endian value such as an earlier
// add() or a pseudo-header sum (it may exceed 16 bits: it is folded too). Chain calls as with
// partial().
inline std::uint16_t add(std::span<const std::uint8_t> data, std::uint32_t initial = 0) {
  std::uint64_t sum = std::uint64_t{fold(partial(data))} + initial;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

// The Internet checksum of data: the complement of add(data, initial). Over data that holds a
// correct checksum (and its pseudo-header sum as initial) it is 0.
inline std::uint16_t internet(std::span<const std::uint8_t> data, std::uint32_t initial = 0) {
  return static_cast<std::uint16_t>(~add(data, initial));
}

}  // namespace base::checksum
