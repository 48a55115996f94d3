// libFuzzer target for the header codec (src/codec/header_codec.hpp). Not built by CMake; by hand
// (Debian 12: apt-get install clang-14 libclang-rt-14-dev):
//
//   clang++-14 -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined \
//     -fno-sanitize-recover=undefined -I. fuzz/header_codec_fuzz.cpp src/codec/header_codec.cpp \
//     src/codec/header_codec_tcp.cpp src/base/packet.cpp -o /tmp/header_codec_fuzz
//   mkdir -p /tmp/hc_corpus && /tmp/header_codec_fuzz -max_total_time=60 -max_len=4096 \
//     /tmp/hc_corpus
//
// (run from the repository root). The first input byte picks the mode:
//  even: DECODE. The rest is a sequence of messages, each [length (1 byte)][bytes], fed in order
//        to one Decompressor that already holds live TCP/UDP, IPv4/IPv6 contexts (cids 0..3,
//        from FULL messages of well-formed packets). Whatever the bytes: no out-of-bounds access
//        (ASan), no UB (UBSan), and a success stays within its buffers.
//  odd:  ROUND TRIP. The rest is a sequence of packet recipes; each makes a packet (from one of
//        four flows' previous packet with some header bytes overwritten, a payload length,
//        lengths and checksums fixed or not, or raw bytes), which goes through a Compressor and
//        a Decompressor: the packet must come back byte for byte, and the encoder's bounds hold.
//        Recipes of kinds 4..6 are first encoded and rolled back (a message that could not be
//        sent), then encoded again.

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "src/base/bytes.hpp"
#include "src/base/checksum.hpp"
#include "src/codec/header_codec.hpp"

namespace {

using Bytes = std::vector<std::uint8_t>;

void check(bool ok) {
  if (!ok) std::abort();
}

using base::store_be16;
namespace checksum = base::checksum;

// Sets lengths (fix_lengths) and checksums (how: 0 complete, 1 partial, 2 UDP none) the way a
// sender would, for whatever of that the packet's own header allows.
void fix(Bytes& p, bool fix_lengths, int how) {
  if (p.size() < 20) return;
  std::size_t l4 = 0;
  std::uint8_t proto = 0;
  if ((p[0] >> 4) == 4) {
    l4 = (p[0] & 15) * 4u;
    proto = p[9];
    if (l4 < 20 || l4 > p.size()) return;
    if (fix_lengths) store_be16(&p[2], static_cast<std::uint16_t>(p.size()));
    store_be16(&p[10], 0);
    store_be16(&p[10], checksum::internet({p.data(), l4}));
    if ((p[6] & 0x1f) || p[7]) return;  // a later fragment
  } else if ((p[0] >> 4) == 6 && p.size() >= 40) {
    l4 = 40;
    proto = p[6];
    if (fix_lengths) store_be16(&p[4], static_cast<std::uint16_t>(p.size() - 40));
  } else {
    return;
  }
  std::size_t at = l4 + (proto == IPPROTO_TCP ? 16 : 6);
  if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || at + 2 > p.size()) return;
  std::size_t len = p.size() - l4;
  if (proto == IPPROTO_UDP && fix_lengths) store_be16(&p[l4 + 4], static_cast<std::uint16_t>(len));
  std::uint32_t pseudo = (p[0] >> 4) == 4
                             ? checksum::add({&p[12], 8})
                             : checksum::add({&p[8], 32}) + static_cast<std::uint32_t>(len >> 16);
  pseudo += static_cast<std::uint32_t>(len & 0xffff) + proto;
  store_be16(&p[at], 0);
  if (how == 2 && proto == IPPROTO_UDP) return;
  if (how == 1) {
    store_be16(&p[at], checksum::add({}, pseudo));
    return;
  }
  auto sum = checksum::internet({&p[l4], len}, pseudo);
  if (proto == IPPROTO_UDP && sum == 0) sum = 0xffff;
  store_be16(&p[at], sum);
}

// The four flows' first packets: TCP/IPv4 with NOP NOP TS, TCP/IPv6 with NOP NOP TS NOP NOP
// SACK(1), UDP/IPv4, UDP/IPv6.
Bytes seed(int kind) {
  bool v6 = kind & 1, udp = kind & 2;
  std::size_t ip = v6 ? 40 : 20, l4 = udp ? 8 : (v6 ? 44 : 32);
  Bytes p(ip + l4 + 24, 0);
  if (v6) {
    p[0] = 0x60;
    p[6] = udp ? IPPROTO_UDP : IPPROTO_TCP;
    p[7] = 64;
    p[8] = 0xfd;
    p[23] = 1;
    p[24] = 0xfd;
    p[39] = 2;
  } else {
    p[0] = 0x45;
    p[6] = 0x40;
    p[8] = 64;
    p[9] = udp ? IPPROTO_UDP : IPPROTO_TCP;
    const std::uint8_t addrs[8] = {10, 1, 0, 1, 10, 2, 0, 1};
    std::memcpy(&p[12], addrs, 8);
  }
  std::uint8_t* t = &p[ip];
  store_be16(t, 40000);
  store_be16(t + 2, udp ? 53 : 443);
  if (!udp) {
    t[7] = 1;
    t[11] = 1;
    t[12] = static_cast<std::uint8_t>(l4 / 4 << 4);
    t[13] = 0x10;
    t[14] = 1;
    const std::uint8_t opts[24] = {1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 7,
                                   1, 1, 5, 10, 0, 0, 0, 9, 0, 0, 1, 0};
    std::memcpy(t + 20, opts, l4 - 20);
  }
  fix(p, true, 0);
  return p;
}

struct Input {
  const std::uint8_t* p;
  std::size_t n;
  bool empty() const { return n == 0; }
  std::uint8_t u8() {
    if (!n) return 0;
    --n;
    return *p++;
  }
};

void roundtrip(codec::Compressor& tx, codec::Decompressor& rx, const Bytes& packet, bool partial,
               bool blocked_first = false) {
  std::uint8_t out[codec::kMaxEncodedSize];
  if (blocked_first) {  // encoded, but the message could not be sent: undone
    tx.encode(packet, out, partial);
    tx.rollback();
  }
  codec::Encoded enc = tx.encode(packet, out, partial);
  check(enc.written >= 1 && enc.written <= sizeof out);
  check(enc.header_len <= packet.size());
  check(enc.written <= enc.header_len + codec::kMaxExpansion);
  Bytes msg(out, out + enc.written);
  msg.insert(msg.end(), packet.begin() + static_cast<std::ptrdiff_t>(enc.header_len), packet.end());
  std::uint8_t hdr[codec::kMaxHeaderSize];
  codec::Decoded dec;
  check(rx.decode(msg, hdr, dec) == codec::Error::none);
  check(dec.form == enc.form && dec.consumed <= msg.size());
  Bytes back(hdr, hdr + dec.header_len);
  back.insert(back.end(), msg.begin() + static_cast<std::ptrdiff_t>(dec.consumed), msg.end());
  check(back == packet);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in{data, size};
  if (in.empty()) return 0;
  std::uint8_t mode = in.u8();
  codec::Compressor tx;
  codec::Decompressor rx;
  Bytes flows[4];
  for (int k = 0; k < 4; ++k) {
    flows[k] = seed(k);
    roundtrip(tx, rx, flows[k], false);  // FULL: contexts 0..3 on both sides
  }

  if (mode % 2 == 0) {
    std::uint8_t hdr[codec::kMaxHeaderSize];
    while (!in.empty()) {
      std::size_t len = std::min<std::size_t>(in.u8(), in.n);
      Bytes msg(in.p, in.p + len);  // an exact-size copy, so ASan sees any overread
      in.p += len;
      in.n -= len;
      codec::Decoded dec;
      if (rx.decode(msg, hdr, dec) == codec::Error::none)
        check(dec.header_len <= sizeof hdr && dec.consumed <= msg.size() &&
              (dec.form != codec::Form::escape || dec.header_len == 0));
    }
    return 0;
  }

  while (!in.empty()) {
    std::uint8_t recipe = in.u8();
    Bytes p;
    if ((recipe & 7) == 7) {  // raw bytes
      std::size_t len = std::min<std::size_t>(in.u8(), in.n);
      p.assign(in.p, in.p + len);
      in.p += len;
      in.n -= len;
      if (p.empty()) continue;
    } else {
      Bytes& flow = flows[recipe & 3];
      p = flow;
      int edits = in.u8() % 8;
      for (int i = 0; i < edits; ++i) {
        std::uint8_t at = in.u8(), v = in.u8();
        if (!p.empty()) p[at % std::min<std::size_t>(p.size(), 104)] = v;
      }
      if (recipe & 0x08) {  // a new payload length
        std::size_t keep = std::min<std::size_t>(p.size(), 100);
        p.resize(keep + in.u8() * 4u + (recipe >> 6), 0x5a);
      }
      if (!(recipe & 0x10)) fix(p, !(recipe & 0x20), (recipe >> 6) % 3);
      flow = p;
    }
    bool partial = (recipe & 0xc0) == 0x40;
    roundtrip(tx, rx, p, partial, (recipe & 7) >= 4 && (recipe & 7) <= 6);
  }
  return 0;
}
