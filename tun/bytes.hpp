#pragma once
// Big-endian loads and stores on spans, for the packet code of tun/. Callers have checked that
// [at, at + width) lies inside p.

#include <cstddef>
#include <cstdint>
#include <span>

namespace tun::bytes {

inline std::uint16_t load16(std::span<const std::uint8_t> p, std::size_t at) {
  return static_cast<std::uint16_t>(p[at] << 8 | p[at + 1]);
}
inline std::uint32_t load32(std::span<const std::uint8_t> p, std::size_t at) {
  return std::uint32_t{load16(p, at)} << 16 | load16(p, at + 2);
}
inline void store16(std::span<std::uint8_t> p, std::size_t at, std::uint32_t v) {
  p[at] = static_cast<std::uint8_t>(v >> 8);
  p[at + 1] = static_cast<std::uint8_t>(v);
}
inline void store32(std::span<std::uint8_t> p, std::size_t at, std::uint32_t v) {
  store16(p, at, v >> 16);
  store16(p, at + 2, v);
}

}  // namespace tun::bytes
