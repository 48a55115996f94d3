#pragma once
// The SCTP checksum for the traffic tools that build SCTP packets (spray, replay): CRC32c
// (Castagnoli), reflected polynomial 0x82F63B78, init and final XOR 0xFFFFFFFF, over the packet
// with bytes 8..11 taken as zero, stored least significant byte first, as Linux and usrsctp do
// (src/base/crc32c.hpp, whose fast implementations are not header-only: this is the portable
// one, one table, enough for test traffic).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace tool {

namespace detail {
struct CrcTable {
  std::uint32_t t[256];
  constexpr CrcTable() : t{} {
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int b = 0; b < 8; ++b) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
  }
};
inline constexpr CrcTable kCrc;
}  // namespace detail

// The CRC32c of n bytes at p: crc32c("123456789") == 0xE3069283.
inline std::uint32_t crc32c(const std::uint8_t* p, std::size_t n) {
  std::uint32_t c = 0xFFFFFFFFu;
  while (n-- > 0) c = (c >> 8) ^ detail::kCrc.t[(c ^ *p++) & 0xff];
  return c ^ 0xFFFFFFFFu;
}

// Writes the checksum of a whole SCTP packet (common header first) into bytes 8..11; packets
// shorter than the common header are left alone.
inline void set_sctp_checksum(std::span<std::uint8_t> pkt) {
  if (pkt.size() < 12) return;
  std::memset(pkt.data() + 8, 0, 4);
  std::uint32_t c = crc32c(pkt.data(), pkt.size());
  for (int i = 0; i < 4; ++i) pkt[8 + i] = static_cast<std::uint8_t>(c >> (8 * i));
}

}  // namespace tool
