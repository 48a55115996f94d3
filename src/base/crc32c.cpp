#include "src/base/crc32c.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC32C_X86_64 1
#include <immintrin.h>
#else
#define CRC32C_X86_64 0
#endif

namespace base::crc32c {
namespace {

// Everything below works on the raw CRC state: initial value 0xFFFFFFFF, no final XOR; the
// public functions add the inversions. State bit i is the coefficient of x^(31-i) ("reflected").
constexpr std::uint32_t kPolynomial = 0x82F63B78;  // 0x1EDC6F41 bit-reversed

inline std::uint64_t load_le64(const std::uint8_t* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}

// ---- Portable: slicing-by-8. table[k][b] is the CRC state after byte b followed by k zeros.

struct Tables {
  std::uint32_t t[8][256];
};

constexpr Tables make_tables() {
  Tables tables{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1) ? (c >> 1) ^ kPolynomial : c >> 1;
    tables.t[0][i] = c;
  }
  for (int k = 1; k < 8; ++k) {
    for (std::uint32_t i = 0; i < 256; ++i) {
      const std::uint32_t prev = tables.t[k - 1][i];
      tables.t[k][i] = (prev >> 8) ^ tables.t[0][prev & 0xff];
    }
  }
  return tables;
}

alignas(64) constexpr Tables kTables = make_tables();

std::uint32_t update_software(std::uint32_t state, const std::uint8_t* p, std::size_t n) {
  const auto& t = kTables.t;
  while (n >= 8) {
    const std::uint64_t w = load_le64(p) ^ state;
    state = t[7][w & 0xff] ^ t[6][(w >> 8) & 0xff] ^ t[5][(w >> 16) & 0xff] ^
            t[4][(w >> 24) & 0xff] ^ t[3][(w >> 32) & 0xff] ^ t[2][(w >> 40) & 0xff] ^
            t[1][(w >> 48) & 0xff] ^ t[0][w >> 56];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) state = (state >> 8) ^ t[0][(state ^ *p++) & 0xff];
  return state;
}

#if CRC32C_X86_64

// ---- SSE4.2: crc32 instruction. _mm_crc32_u64(s, d) == (s * x^64 + d * x^32) mod P.

__attribute__((target("sse4.2"))) std::uint32_t update_sse42(std::uint32_t state,
                                                             const std::uint8_t* p, std::size_t n) {
  std::uint64_t s = state;
  while (n >= 8) {
    s = _mm_crc32_u64(s, load_le64(p));
    p += 8;
    n -= 8;
  }
  auto s32 = static_cast<std::uint32_t>(s);
  if (n >= 4) {
    std::uint32_t w;
    std::memcpy(&w, p, sizeof w);
    s32 = _mm_crc32_u32(s32, w);
    p += 4;
    n -= 4;
  }
  while (n-- > 0) s32 = _mm_crc32_u8(s32, *p++);
  return s32;
}

// ---- SSE4.2 + PCLMULQDQ: the crc32 instruction has a latency of 3 cycles but a throughput of
// one per cycle, so a block is cut into three lanes of `len` bytes that run as independent
// chains: lane 0 continues the running state, lanes 1 and 2 start from 0. By linearity
//   state(A B C) = state(A) * x^(16 len) + state0(B) * x^(8 len) + state0(C)   (mod P),
// and "multiply by x^(8 n) mod P" is one carry-less multiply by K = x^(8 n - 33) mod P followed
// by a crc32 of the 64-bit product (which multiplies by x^32 and reduces; the reflected
// carry-less product carries one more factor x).

constexpr std::size_t kMaxLaneWords = 256;  // 8-byte words per lane: blocks of up to 6 KiB
constexpr std::size_t kMinLaneWords = 4;    // below that the recombination is not worth it

constexpr std::uint32_t times_x(std::uint32_t v) {
  return (v & 1) ? (v >> 1) ^ kPolynomial : v >> 1;
}

// kShift[w] = x^(64 w - 33) mod P: advances a state over 8 w zero bytes (w >= 1).
constexpr std::array<std::uint32_t, 2 * kMaxLaneWords + 1> make_shift_constants() {
  std::array<std::uint32_t, 2 * kMaxLaneWords + 1> k{};
  std::uint32_t v = 0x80000000;  // x^0
  for (int i = 0; i < 31; ++i) v = times_x(v);
  k[1] = v;
  for (std::size_t w = 2; w < k.size(); ++w) {
    for (int i = 0; i < 64; ++i) v = times_x(v);
    k[w] = v;
  }
  return k;
}

alignas(64) constexpr auto kShift = make_shift_constants();

__attribute__((target("sse4.2,pclmul"))) std::uint32_t update_sse42_pclmul(std::uint32_t state,
                                                                           const std::uint8_t* p,
                                                                           std::size_t n) {
  std::uint64_t s0 = state;
  while (n >= 3 * 8 * kMinLaneWords) {
    const std::size_t words = std::min(n / 24, kMaxLaneWords);
    const std::size_t len = words * 8;
    const std::uint8_t* p1 = p + len;
    const std::uint8_t* p2 = p1 + len;
    std::uint64_t s1 = 0;
    std::uint64_t s2 = 0;
    for (std::size_t i = 0; i < len; i += 8) {
      s0 = _mm_crc32_u64(s0, load_le64(p + i));
      s1 = _mm_crc32_u64(s1, load_le64(p1 + i));
      s2 = _mm_crc32_u64(s2, load_le64(p2 + i));
    }
    const __m128i a = _mm_cvtsi32_si128(static_cast<int>(s0));
    const __m128i b = _mm_cvtsi32_si128(static_cast<int>(s1));
    const __m128i ka = _mm_cvtsi32_si128(static_cast<int>(kShift[2 * words]));
    const __m128i kb = _mm_cvtsi32_si128(static_cast<int>(kShift[words]));
    const __m128i product =
        _mm_xor_si128(_mm_clmulepi64_si128(a, ka, 0x00), _mm_clmulepi64_si128(b, kb, 0x00));
    s0 = _mm_crc32_u64(0, static_cast<std::uint64_t>(_mm_cvtsi128_si64(product))) ^ s2;
    p = p2 + len;
    n -= 3 * len;
  }
  return update_sse42(static_cast<std::uint32_t>(s0), p, n);
}

#endif  // CRC32C_X86_64

bool cpu_supports(Implementation implementation) {
  switch (implementation) {
    case Implementation::software:
      return true;
#if CRC32C_X86_64
    case Implementation::sse42:
      __builtin_cpu_init();
      return __builtin_cpu_supports("sse4.2");
    case Implementation::sse42_pclmul:
      __builtin_cpu_init();
      return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul");
#endif
    default:
      return false;
  }
}

Implementation choose() {
  for (auto candidate : {Implementation::sse42_pclmul, Implementation::sse42}) {
    if (cpu_supports(candidate)) return candidate;
  }
  return Implementation::software;
}

// Zero-initialised (software) until the dynamic initialiser has run, so a call from another
// static initialiser is still correct.
const Implementation g_selected = choose();
const bool g_sse42 = cpu_supports(Implementation::sse42);
const bool g_sse42_pclmul = cpu_supports(Implementation::sse42_pclmul);

inline std::uint32_t update(Implementation implementation, std::uint32_t state,
                            const std::uint8_t* p, std::size_t n) {
  switch (implementation) {
#if CRC32C_X86_64
    case Implementation::sse42_pclmul:
      return update_sse42_pclmul(state, p, n);
    case Implementation::sse42:
      return update_sse42(state, p, n);
#endif
    default:
      return update_software(state, p, n);
  }
}

// The CRC of an SCTP packet with its checksum field taken as zero, without writing to the packet
// (the header goes through a local copy; zeroing the field in place and then reading across it
// would also cost a store-forwarding stall).
std::uint32_t sctp_packet_crc(const std::uint8_t* p, std::size_t n) {
  std::uint8_t header[kSctpCommonHeaderSize];
  std::memcpy(header, p, kSctpChecksumOffset);
  std::memset(header + kSctpChecksumOffset, 0, 4);
  std::uint32_t state = update(g_selected, 0xFFFFFFFF, header, sizeof header);
  state = update(g_selected, state, p + kSctpCommonHeaderSize, n - kSctpCommonHeaderSize);
  return ~state;
}

}  // namespace

std::uint32_t extend(std::uint32_t crc, std::span<const std::uint8_t> data) {
  return ~update(g_selected, ~crc, data.data(), data.size());
}

std::uint32_t compute(std::span<const std::uint8_t> data) {
  return extend(0, data);
}

bool hardware() {
  return g_selected != Implementation::software;
}

void set_sctp_checksum(std::span<std::uint8_t> sctp_packet) {
  if (sctp_packet.size() < kSctpCommonHeaderSize) return;
  const std::uint32_t crc = sctp_packet_crc(sctp_packet.data(), sctp_packet.size());
  std::uint8_t* field = sctp_packet.data() + kSctpChecksumOffset;
  field[0] = static_cast<std::uint8_t>(crc);
  field[1] = static_cast<std::uint8_t>(crc >> 8);
  field[2] = static_cast<std::uint8_t>(crc >> 16);
  field[3] = static_cast<std::uint8_t>(crc >> 24);
}

bool verify_sctp_checksum(std::span<const std::uint8_t> sctp_packet) {
  if (sctp_packet.size() < kSctpCommonHeaderSize) return false;
  const std::uint8_t* field = sctp_packet.data() + kSctpChecksumOffset;
  const std::uint32_t stored = std::uint32_t{field[0]} | std::uint32_t{field[1]} << 8 |
                               std::uint32_t{field[2]} << 16 | std::uint32_t{field[3]} << 24;
  return sctp_packet_crc(sctp_packet.data(), sctp_packet.size()) == stored;
}

const char* name(Implementation implementation) {
  switch (implementation) {
    case Implementation::software:
      return "software (slicing-by-8)";
    case Implementation::sse42:
      return "sse4.2";
    case Implementation::sse42_pclmul:
      return "sse4.2+pclmul (3-way)";
  }
  return "?";
}

bool supported(Implementation implementation) {
  switch (implementation) {
    case Implementation::software:
      return true;
    case Implementation::sse42:
      return g_sse42;
    case Implementation::sse42_pclmul:
      return g_sse42_pclmul;
  }
  return false;
}

Implementation selected() {
  return g_selected;
}

std::uint32_t extend(Implementation implementation, std::uint32_t crc,
                     std::span<const std::uint8_t> data) {
  if (!supported(implementation)) {
    throw std::invalid_argument(std::string("crc32c: implementation not supported here: ") +
                                name(implementation));
  }
  return ~update(implementation, ~crc, data.data(), data.size());
}

}  // namespace base::crc32c
