#pragma once
// The wire format of forward error correction below SCTP: datagrams on the same UDP socket as
// the SCTP packets (usrsctp over UDP), big-endian. Every FEC datagram starts with 00 00 46 KIND:
// an SCTP packet never has source port 0, and path probes (00 00 00 00 "STPB") have byte 2 = 0,
// so the three never collide.
//
//   DATA   (kind 1 protected: parity covering it follows; kind 4 numbered only: no parity
//          follows), kDataHeader bytes, then the SCTP packet unchanged:
//            00 00 46 01|04 | seq (32)
//          seq counts every data datagram of a path (both kinds), wrapping (serial arithmetic).
//   PARITY (kind 2), kParityHeader bytes, the parity symbol, a kMacSize-byte MAC:
//            00 00 46 02 | first seq (32) | k (8) | m (8) | index (8) | 0 (8) | symbol_len (16)
//          covers the k data datagrams first..first+k-1 (1 <= k <= kMaxData) with m parity in
//          all (1 <= m <= kMaxParity); this is parity number index (< m).
//   REPORT (kind 3), kReportSize bytes, the receiver's cumulative counters of one path:
//            00 00 46 03 | highest seq | received | lost | rebuilt | unrecovered (32 each) |
//            4 zero bytes | MAC
//          all counters wrap mod 2^32 (the sender takes differences).
// MAC = BLAKE2b with a 16-byte output keyed with the 32-byte FEC key over every byte before it.
// DATA carries no MAC: a forged one can at worst spoil a rebuild, and rebuilt packets are checked
// by SCTP's CRC32c like any other.
//
// Symbols: in a block, data datagram i contributes the symbol [len_hi, len_lo, packet bytes,
// zero padding] of symbol_len = kSymbolPrefix + the longest packet of the block bytes; a rebuilt
// symbol gives back the exact packet.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "src/crypto/session.hpp"

namespace fec::wire {

inline constexpr std::uint8_t kMarker = 0x46;  // 'F', byte 2 of every FEC datagram
inline constexpr std::size_t kDataHeader = 8;
inline constexpr std::size_t kParityHeader = 14;
inline constexpr std::size_t kMacSize = 16;
inline constexpr std::size_t kReportSize = 44;
inline constexpr std::size_t kSymbolPrefix = 2;
// How much longer a parity datagram is than the longest packet it protects (the caller reserves
// it in the path MTU).
inline constexpr std::size_t kParityOverhead = kParityHeader + kSymbolPrefix + kMacSize;
inline constexpr std::size_t kMaxData = 64;    // k: data datagrams per block
inline constexpr std::size_t kMaxParity = 16;  // m: parity datagrams per block
// The longest packet a symbol can carry (symbol_len is 16 bits).
inline constexpr std::size_t kMaxPacket = 0xffff - kSymbolPrefix;

static_assert(kParityOverhead == 32);
static_assert(kReportSize == 4 + 5 * 4 + 4 + kMacSize);

enum class Kind : std::uint8_t { data = 1, parity = 2, report = 3, data_unprotected = 4 };

// The kind of an FEC datagram (bytes 0, 1 zero, byte 2 kMarker, byte 3 a kind); nullopt for
// anything else (an SCTP packet, a path probe, garbage). Says nothing about the rest.
std::optional<Kind> kind_of(std::span<const std::uint8_t> datagram);

struct Data {
  std::uint32_t seq = 0;
  bool is_protected = false;             // kind 1 (else kind 4)
  std::span<const std::uint8_t> packet;  // within the parsed datagram, at most kMaxPacket bytes
};
// Writes the DATA header of a packet: the datagram is these kDataHeader bytes + the packet.
void encode_data_header(std::uint32_t seq, bool is_protected, std::uint8_t out[kDataHeader]);
// A DATA datagram (kind 1 or 4, packet of 0..kMaxPacket bytes); nullopt otherwise.
std::optional<Data> parse_data(std::span<const std::uint8_t> datagram);

struct Parity {
  std::uint32_t first = 0;
  std::uint8_t k = 0, m = 0, index = 0;
  std::span<const std::uint8_t> symbol;  // symbol_len = symbol.size()
};
// The size of the parity datagram carrying a symbol of symbol_len bytes.
constexpr std::size_t parity_size(std::size_t symbol_len) {
  return kParityHeader + symbol_len + kMacSize;
}
// Writes the parity datagram of p into out (at least parity_size(p.symbol.size()) bytes):
// header, symbol (copied unless it already sits at out + kParityHeader) and MAC; returns the
// datagram (a prefix of out). Requires 1 <= k <= kMaxData, 1 <= m <= kMaxParity, index < m and
// kSymbolPrefix <= symbol_len <= 0xffff.
std::span<const std::uint8_t> encode_parity(const Parity& p, const crypto::Key& key,
                                            std::span<std::uint8_t> out);
// A well-formed PARITY datagram (sizes, k and m ranges, index < m, reserved byte zero,
// symbol_len >= kSymbolPrefix and == what remains before the MAC); the symbol points into it.
// The MAC is not checked: verify().
std::optional<Parity> parse_parity(std::span<const std::uint8_t> datagram);

struct Report {
  std::uint32_t highest_seq = 0, received = 0, lost = 0, rebuilt = 0, unrecovered = 0;
  bool operator==(const Report&) const = default;
};
std::array<std::uint8_t, kReportSize> encode_report(const Report& r, const crypto::Key& key);
// A well-formed REPORT datagram (kReportSize bytes, reserved bytes zero). The MAC is not checked
// (verify(), or the overload with a key).
std::optional<Report> parse_report(std::span<const std::uint8_t> datagram);
// parse_report, and nullopt unless the MAC is valid for key.
std::optional<Report> parse_report(std::span<const std::uint8_t> datagram, const crypto::Key& key);

// True when the last kMacSize bytes of a PARITY or REPORT datagram are the MAC of the bytes
// before them under key (constant-time comparison). False for datagrams too short to hold a
// header and a MAC.
bool verify(std::span<const std::uint8_t> datagram, const crypto::Key& key);

// The symbol form of a packet: writes the length prefix (len <= kMaxPacket) into out.
void encode_symbol_prefix(std::size_t len, std::uint8_t out[kSymbolPrefix]);
// The packet in a symbol (a rebuilt one): its length prefix, nullopt when that exceeds the
// symbol. The padding is not checked.
std::optional<std::span<const std::uint8_t>> symbol_packet(std::span<const std::uint8_t> symbol);

}  // namespace fec::wire
