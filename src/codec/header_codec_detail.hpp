#pragma once
// The header codec's internals shared by header_codec.cpp and header_codec_tcp.cpp: the parsed
// shape of a packet, the bounded writer and reader of compressed headers, and the functions of
// one file the other calls. Not for callers of the codec (they include header_codec.hpp).

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "src/base/bytes.hpp"
#include "src/codec/header_codec.hpp"

namespace codec::detail {

// What analyze() finds in a packet the codec can compress.
struct Parsed {
  std::uint8_t version = 0, proto = 0, ip_len = 0, l4_len = 0;
  std::uint32_t payload_len = 0;
  OptLayout opts;  // TCP
};

// Bounded writer / reader of compressed headers: every access is checked, failures are sticky.
struct Writer {
  std::uint8_t* p;
  std::size_t cap, n = 0;
  bool ok = true;
  void u8(std::uint8_t v) {
    if (n < cap)
      p[n++] = v;
    else
      ok = false;
  }
  void varint(std::uint32_t v) {
    while (v >= 0x80) {
      u8(static_cast<std::uint8_t>(v | 0x80));
      v >>= 7;
    }
    u8(static_cast<std::uint8_t>(v));
  }
  void bytes(const std::uint8_t* b, std::size_t len) {
    for (std::size_t i = 0; i < len; ++i) u8(b[i]);
  }
};

struct Reader {
  const std::uint8_t* p;
  std::size_t size, pos = 0;
  bool ok = true;
  std::uint8_t u8() {
    if (pos < size) return p[pos++];
    ok = false;
    return 0;
  }
  // A canonical varint whose value is at most max.
  std::uint32_t varint(std::uint32_t max = 0xffffffffu) {
    std::uint64_t v = 0;
    for (int i = 0; i < 5; ++i) {
      std::uint8_t b = u8();
      v |= std::uint64_t{b & 0x7fu} << (7 * i);
      if (!(b & 0x80)) {
        if ((i > 0 && b == 0) || v > max) ok = false;  // overlong or out of range
        return ok ? static_cast<std::uint32_t>(v) : 0;
      }
    }
    ok = false;  // more than 5 bytes
    return 0;
  }
};

// The error for a reader that failed: it ran out of bytes, or read a bad varint.
inline Error reader_error(const Reader& r) {
  return r.pos >= r.size ? Error::truncated : Error::bad_field;
}

inline std::uint32_t zigzag(std::int32_t v) {
  return (static_cast<std::uint32_t>(v) << 1) ^ static_cast<std::uint32_t>(v >> 31);
}
inline std::int32_t unzigzag(std::uint32_t v) {
  return static_cast<std::int32_t>((v >> 1) ^ (0u - (v & 1)));
}
// header_codec.cpp
OptLayout parse_options(const std::uint8_t* opts, std::size_t len);
// Copies the options with their dynamic fields (timestamp values, SACK blocks) zeroed.
void mask_options(const std::uint8_t* opts, const OptLayout& layout, std::uint8_t* out);
// Finds the IP + TCP/UDP header of a packet the codec can compress (lengths consistent, no IPv4
// options or fragments, no IPv6 extension headers, a valid IPv4 header checksum), or false.
bool analyze(std::span<const std::uint8_t> packet, Parsed& out);
// The shape part of analyze(): IP and TCP/UDP header types and lengths of the n bytes at h,
// without the checks of lengths and checksums against a packet.
bool parse_shape(const std::uint8_t* h, std::size_t n, Parsed& out);
// Zeroes the fields that are recomputed: IP lengths, IPv4 header checksum, UDP length, the
// TCP/UDP checksum.
void shape(std::uint8_t* hdr, const Parsed& p);
// The TCP/UDP checksum field value that mode gives the packet hdr (IP + L4 header) + payload.
std::uint16_t l4_checksum(const std::uint8_t* hdr, const Parsed& p,
                          std::span<const std::uint8_t> payload, std::uint8_t mode);
// First bytes of the FULL and DIFF forms (+ mode) and the UDP form's flag bits.
inline constexpr std::uint8_t kFormFull = 0x01, kFormDiff = 0x04;
inline constexpr std::uint8_t kUdpC = 0x20, kUdpF = 0x10, kUdpI = 0x08;
// Offset of the checksum in the TCP or UDP header.
inline std::size_t l4_csum_offset(std::uint8_t proto) {
  return proto == IPPROTO_TCP ? 16 : 6;
}
// Sets the lengths and checksums of a rebuilt header; false when the packet would be too long.
bool finish_header(std::uint8_t* hdr, const Parsed& p, std::uint8_t mode,
                   std::span<const std::uint8_t> payload);
// Reads the rest of the UDP compressed form into hdr, p and mode (lengths and checksums left).
Error decode_udp(std::uint8_t first, const Context& c, Reader& r, std::uint8_t* hdr, Parsed& p,
                 std::uint8_t& mode);
// Makes c describe the packet whose header is hdr (fresh: a new context, else the next packet).
void store(Context& c, const std::uint8_t* hdr, const Parsed& p, std::uint8_t mode, bool fresh);
// The IPF bits (IP fields, TCP reserved bits, checksum mode) in which hdr differs from c.
std::uint8_t ipf_changes(const Context& c, const std::uint8_t* hdr, const Parsed& p,
                         std::uint8_t mode);
void write_ipf(Writer& w, std::uint8_t bits, const std::uint8_t* hdr, const Parsed& p,
               std::uint8_t mode);
// Reads an IPF byte and its values into hdr (a copy of the previous header) and mode.
Error read_ipf(Reader& r, std::uint8_t* hdr, const Parsed& p, std::uint8_t& mode);

// header_codec_tcp.cpp: the TCP compressed form. encode_tcp writes it whole (cid < 0: no cid,
// the decompressor uses the previous message's context); on overflow w.ok turns false.
void encode_tcp(const Context& c, const std::uint8_t* hdr, const Parsed& p, std::uint8_t mode,
                int cid, Writer& w);
// Reads the rest of the TCP compressed form (after the first byte and the cid) and rebuilds the
// header into hdr (kMaxHeaderSize bytes) except lengths and checksums; p and mode describe it
// (p.payload_len is left for the caller).
Error decode_tcp(std::uint8_t first, const Context& c, Reader& r, std::uint8_t* hdr, Parsed& p,
                 std::uint8_t& mode);
}  // namespace codec::detail
