#pragma once
// CRC32c (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78; init and final XOR 0xFFFFFFFF),
// the checksum of the SCTP common header (RFC 4960 section 6.8 and appendix B, RFC 3309).
//
// With usrsctp_enable_crc32c_offload() usrsctp neither fills in nor checks the checksum of the
// AF_CONN packets it hands us / we hand it, so the transport calls set_sctp_checksum() on every
// outgoing packet and verify_sctp_checksum() on every incoming one.
//
// Two implementations give identical results; the fastest one the CPU supports is chosen once at
// start-up (never by compile flags: the binary must also run on CPUs without SSE4.2):
//   software      portable slicing-by-8 tables, any CPU and byte order.
//   sse42         x86-64 SSE4.2 `crc32` instruction, 8 bytes at a time, one dependency chain.
//   sse42_pclmul  the same, three interleaved chains per block, recombined with one carry-less
//                 multiply (PCLMULQDQ); roughly three times the throughput of sse42 on packets.
//
// Byte order in the SCTP header: the CRC is stored least significant byte first (the field is
// NOT in network byte order like the rest of the header), i.e. packet[8] = crc & 0xff, ...,
// packet[11] = crc >> 24. This is what usrsctp does: usrsctp_crc32c() returns a value that it
// stores in host order, and on little-endian hosts that value equals compute() (on big-endian
// hosts usrsctp byte-swaps it so that the bytes on the wire are the same). Checked against
// usrsctp_crc32c() in crc32c_test.cpp.

#include <cstddef>
#include <cstdint>
#include <span>

namespace base::crc32c {

// The CRC32c of `data` (final value, i.e. after the final XOR): compute("123456789") == 0xE3069283.
std::uint32_t compute(std::span<const std::uint8_t> data);

// Continues a CRC: extend(compute(a), b) == compute(a followed by b); extend(0, b) == compute(b).
std::uint32_t extend(std::uint32_t crc, std::span<const std::uint8_t> data);

// True if compute() uses the SSE4.2 crc32 instruction.
bool hardware();

// SCTP common header: source port(2) destination port(2) verification tag(4) checksum(4).
inline constexpr std::size_t kSctpCommonHeaderSize = 12;
inline constexpr std::size_t kSctpChecksumOffset = 8;

// Writes the checksum of a whole SCTP packet (common header first) into bytes 8..11, computed with
// that field taken as zero. Packets shorter than the common header are left alone.
void set_sctp_checksum(std::span<std::uint8_t> sctp_packet);

// True if bytes 8..11 hold the checksum of the packet (computed with that field taken as zero).
// False for packets shorter than the common header. The packet is not modified.
bool verify_sctp_checksum(std::span<const std::uint8_t> sctp_packet);

// Explicit choice of implementation, for tests and benchmarks.
enum class Implementation { software, sse42, sse42_pclmul };
const char* name(Implementation implementation);
bool supported(Implementation implementation);  // by this build and this CPU
Implementation selected();                      // what compute() uses
// Same contract as extend(); `implementation` must be supported().
std::uint32_t extend(Implementation implementation, std::uint32_t crc,
                     std::span<const std::uint8_t> data);
inline std::uint32_t compute(Implementation implementation, std::span<const std::uint8_t> data) {
  return extend(implementation, 0, data);
}

}  // namespace base::crc32c
