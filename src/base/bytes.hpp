#pragma once
// Big-endian (network byte order) loads and stores of 16-, 32- and 64-bit integers at any
// alignment. Callers have checked that the bytes lie inside their buffer. At run time each is a
// memcpy and a byte swap, which compilers turn into one load or store (movbe, or mov + bswap);
// in constant evaluation they assemble the bytes one by one.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

namespace base {
namespace bytes_detail {

template <typename T>
constexpr T to_big(T v) {
  if constexpr (std::endian::native == std::endian::big || sizeof(T) == 1) {
    return v;
  } else if constexpr (sizeof(T) == 2) {
    return __builtin_bswap16(v);
  } else if constexpr (sizeof(T) == 4) {
    return __builtin_bswap32(v);
  } else {
    return __builtin_bswap64(v);
  }
}

template <typename T>
constexpr T load(const std::uint8_t* p) {
  if (std::is_constant_evaluated()) {
    T v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>(v << 8 | p[i]);
    return v;
  }
  T v;
  std::memcpy(&v, p, sizeof(T));
  return to_big(v);
}

template <typename T>
constexpr void store(std::uint8_t* p, T v) {
  if (std::is_constant_evaluated()) {
    for (std::size_t i = sizeof(T); i-- > 0; v = static_cast<T>(v >> 8))
      p[i] = static_cast<std::uint8_t>(v);
    return;
  }
  v = to_big(v);
  std::memcpy(p, &v, sizeof(T));
}

}  // namespace bytes_detail

constexpr std::uint16_t load_be16(const std::uint8_t* p) {
  return bytes_detail::load<std::uint16_t>(p);
}
constexpr std::uint32_t load_be32(const std::uint8_t* p) {
  return bytes_detail::load<std::uint32_t>(p);
}
constexpr std::uint64_t load_be64(const std::uint8_t* p) {
  return bytes_detail::load<std::uint64_t>(p);
}
constexpr void store_be16(std::uint8_t* p, std::uint16_t v) {
  bytes_detail::store(p, v);
}
constexpr void store_be32(std::uint8_t* p, std::uint32_t v) {
  bytes_detail::store(p, v);
}
constexpr void store_be64(std::uint8_t* p, std::uint64_t v) {
  bytes_detail::store(p, v);
}

// The same at offset `at` of a span: [at, at + width) must lie inside p.
constexpr std::uint16_t load_be16(std::span<const std::uint8_t> p, std::size_t at) {
  return load_be16(p.data() + at);
}
constexpr std::uint32_t load_be32(std::span<const std::uint8_t> p, std::size_t at) {
  return load_be32(p.data() + at);
}
constexpr std::uint64_t load_be64(std::span<const std::uint8_t> p, std::size_t at) {
  return load_be64(p.data() + at);
}
constexpr void store_be16(std::span<std::uint8_t> p, std::size_t at, std::uint16_t v) {
  store_be16(p.data() + at, v);
}
constexpr void store_be32(std::span<std::uint8_t> p, std::size_t at, std::uint32_t v) {
  store_be32(p.data() + at, v);
}
constexpr void store_be64(std::span<std::uint8_t> p, std::size_t at, std::uint64_t v) {
  store_be64(p.data() + at, v);
}

}  // namespace base
