// tun::gro::Coalescer against an oracle: whatever it makes of a sequence of packets, written
// through it as the gateway writes them (take() before a packet that cannot join, refused
// packets as they came), tun::gso::Segmenter turns back into exactly that sequence, byte for
// byte. Segments are built here with valid checksums and IPv4 IDs counting up, as a TCP sender
// with TSO puts them on the wire.

#include "tun/gro.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "src/base/bytes.hpp"
#include "src/base/checksum.hpp"
#include "tun/gso.hpp"
#include "tun/vnet.hpp"

namespace {

using Bytes = std::vector<std::uint8_t>;
using base::store_be16;
using base::store_be32;

struct Seg {
  bool v6 = false;
  std::uint16_t sport = 40000;
  std::uint32_t seq = 1000;
  std::uint16_t id = 7;
  std::size_t payload = 1348;
  std::uint8_t flags = 0x10;  // ACK
  std::uint32_t tsval = 5;    // the timestamp option's value
  std::uint8_t fill = 0;      // payload bytes: fill + index
  bool bad_checksum = false;
};

std::uint16_t fold(std::uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<std::uint16_t>(s);
}

// IPv4 (DF) or IPv6, TCP with a 12-byte timestamp option, checksums valid unless asked not to be.
Bytes make(const Seg& s) {
  const std::size_t l4 = s.v6 ? 40 : 20, tcp = 32, size = l4 + tcp + s.payload;
  Bytes p(size, 0);
  std::span<std::uint8_t> b(p);
  if (s.v6) {
    p[0] = 0x60;
    store_be16(b, 4, static_cast<std::uint32_t>(size - 40));
    p[6] = 6;
    p[7] = 64;
    for (int i = 0; i < 16; ++i)
      p[8 + i] = static_cast<std::uint8_t>(0x20 + i),
            p[24 + i] = static_cast<std::uint8_t>(0x40 + i);
  } else {
    p[0] = 0x45;
    store_be16(b, 2, static_cast<std::uint32_t>(size));
    store_be16(b, 4, s.id);
    store_be16(b, 6, 0x4000);
    p[8] = 64;
    p[9] = 6;
    p[12] = 10, p[13] = 1, p[14] = 0, p[15] = 2;
    p[16] = 10, p[17] = 2, p[18] = 0, p[19] = 2;
    store_be16(b, 10, static_cast<std::uint16_t>(~base::checksum::add(b.first(20))));
  }
  store_be16(b, l4, s.sport);
  store_be16(b, l4 + 2, 5201);
  store_be32(b, l4 + 4, s.seq);
  store_be32(b, l4 + 8, 77777);
  p[l4 + 12] = 0x80;  // 32-byte header
  p[l4 + 13] = s.flags;
  store_be16(b, l4 + 14, 500);
  p[l4 + 20] = 1, p[l4 + 21] = 1, p[l4 + 22] = 8, p[l4 + 23] = 10;  // NOP NOP TS
  store_be32(b, l4 + 24, s.tsval);
  store_be32(b, l4 + 28, 99);
  for (std::size_t i = 0; i < s.payload; ++i)
    p[l4 + tcp + i] = static_cast<std::uint8_t>(s.fill + i);
  std::uint32_t pseudo =
      s.v6 ? base::checksum::add(b.subspan(8, 32)) : base::checksum::add(b.subspan(12, 8));
  pseudo += 6 + static_cast<std::uint32_t>(size - l4);
  std::uint16_t sum = static_cast<std::uint16_t>(~base::checksum::add(b.subspan(l4), fold(pseudo)));
  if (s.bad_checksum) sum ^= 0x0101;
  store_be16(b, l4 + 16, sum);
  return p;
}

// A bulk flow's next n segments after s (seq and ID advance).
std::vector<Bytes> bulk(Seg s, int n) {
  std::vector<Bytes> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(make(s));
    s.seq += static_cast<std::uint32_t>(s.payload);
    ++s.id;
    s.fill = static_cast<std::uint8_t>(s.fill + 3);
  }
  return out;
}

struct Written {
  std::vector<Bytes> packets;  // after segmentation: what the kernel will see
  std::size_t writes = 0;      // writes into the TUN
};

// Writes in through c as the gateway does and expands what was written.
Written through(tun::gro::Coalescer& c, const std::vector<Bytes>& in) {
  Written w;
  tun::gso::Segmenter seg;
  auto write = [&](const tun::PacketBuf* buf) {
    REQUIRE(buf != nullptr);
    ++w.writes;
    auto hdr = tun::VnetHdr::load(buf->data());
    REQUIRE(hdr);
    auto packet = buf->data().subspan(tun::kVnetHdrSize);
    if (hdr->gso_type != tun::VnetHdr::kGsoNone) {
      CHECK(packet.size() <= 65535);
      CHECK(hdr->hdr_len < packet.size());
    }
    REQUIRE(seg.segment(*hdr, packet, [&](std::span<const std::uint8_t> s) {
      w.packets.emplace_back(s.begin(), s.end());
    }));
  };
  for (const Bytes& p : in) {
    if (c.offer(p, [&](const tun::PacketBuf& b) { write(&b); })) continue;
    CHECK(!c.pending());
    ++w.writes;
    w.packets.push_back(p);
  }
  if (c.pending()) write(c.take());
  CHECK(c.take() == nullptr);
  return w;
}

}  // namespace

TEST_CASE("gro: a bulk TCP flow becomes one super-packet that segments back byte for byte") {
  for (bool v6 : {false, true}) {
    CAPTURE(v6);
    Seg s;
    s.v6 = v6;
    auto in = bulk(s, 40);
    tun::gro::Coalescer c;
    Written w = through(c, in);
    CHECK(w.packets == in);
    CHECK(w.writes == 1);
    CHECK(c.super_packets() == 1);
    CHECK(c.segments() == 40);
  }
}

TEST_CASE("gro: 64 KB at most per super-packet; a short segment or PSH ends one") {
  tun::gro::Coalescer c;
  auto in = bulk({}, 100);  // 100 * 1400 bytes: three super-packets
  Written w = through(c, in);
  CHECK(w.packets == in);
  CHECK(w.writes == 3);

  Seg s;
  auto a = bulk(s, 5);
  s.seq += 5 * 1348, s.id += 5, s.payload = 200;  // short: the end of a burst
  a.push_back(make(s));
  s.seq += 200, s.id += 1, s.payload = 1348;
  auto b = bulk(s, 4);
  a.insert(a.end(), b.begin(), b.end());
  tun::gro::Coalescer c2;
  w = through(c2, a);
  CHECK(w.packets == a);
  CHECK(w.writes == 2);  // 5 + the short one, then 4

  s = {};
  auto p = bulk(s, 6);
  Seg last = s;
  last.seq += 6 * 1348, last.id += 6, last.flags = 0x18;  // ACK+PSH
  p.push_back(make(last));
  last.seq += 1348, last.id += 1, last.flags = 0x10;
  p.push_back(make(last));
  tun::gro::Coalescer c3;
  w = through(c3, p);
  CHECK(w.packets == p);
  CHECK(w.writes == 2);  // 7 ending with PSH, then one alone
}

TEST_CASE("gro: a super-packet starts only with a segment of at least 64 payload bytes") {
  for (bool v6 : {false, true}) {
    CAPTURE(v6);
    Seg s;
    s.v6 = v6;
    s.payload = 63;  // would become a gso_size of 63, which the segmenter and a peer refuse
    auto small = bulk(s, 5);
    tun::gro::Coalescer c;
    Written w = through(c, small);
    CHECK(w.packets == small);
    CHECK(w.writes == 5);
    CHECK(c.super_packets() == 0);

    s.payload = 64;
    auto least = bulk(s, 5);
    Seg tail = s;
    tail.seq += 5 * 64, tail.id += 5, tail.payload = 1;  // a short last one still joins
    least.push_back(make(tail));
    tun::gro::Coalescer c2;
    w = through(c2, least);
    CHECK(w.packets == least);
    CHECK(w.writes == 1);
    CHECK(c2.segments() == 6);
  }
}

TEST_CASE("gro: what must not join is written as it came") {
  Seg s;
  std::vector<Bytes> in;
  in.push_back(make(s));
  Seg bad = s;
  bad.seq += 1348, bad.id += 1, bad.bad_checksum = true;
  in.push_back(make(bad));  // a wrong TCP checksum: the receiver must see it and drop it
  Seg gap = s;
  gap.seq += 2 * 1348, gap.id += 2;
  in.push_back(make(gap));  // out of order
  Seg id = gap;
  id.seq += 1348, id.id += 5;
  in.push_back(make(id));  // IPv4 ID jump
  Seg ts = id;
  ts.seq += 1348, ts.id += 1, ts.tsval += 1;
  in.push_back(make(ts));  // another timestamp
  Seg fin = ts;
  fin.seq += 1348, fin.id += 1, fin.flags = 0x11;
  in.push_back(make(fin));  // FIN
  Seg ack = fin;
  ack.seq += 1349, ack.id += 1, ack.payload = 0;
  in.push_back(make(ack));  // no payload
  Bytes udp = make(s);
  udp[9] = 17;
  in.push_back(udp);
  in.push_back(Bytes{0x45, 0});
  tun::gro::Coalescer c;
  Written w = through(c, in);
  CHECK(w.packets == in);
  CHECK(c.super_packets() == 0);
  CHECK(w.writes == in.size());
}

TEST_CASE("gro: random interleavings of two flows and odd segments segment back exactly") {
  std::mt19937 rng(20261207);
  for (int round = 0; round < 300; ++round) {
    Seg flows[2];
    flows[1].sport = 40001;
    flows[1].v6 = round % 2 == 1;
    std::vector<Bytes> in;
    const int n = 1 + static_cast<int>(rng() % 120);
    for (int i = 0; i < n; ++i) {
      Seg& f = flows[rng() % 2];
      Seg s = f;
      switch (rng() % 16) {
        case 0:
          s.payload = 1 + rng() % 1348;
          break;
        case 1:
          s.flags = 0x18;
          break;
        case 2:
          s.bad_checksum = true;
          break;
        case 3:
          s.seq += 1;
          break;
        case 4:
          s.tsval += 1;
          break;
        case 5:
          s.payload = 1348 + rng() % 100;
          break;  // longer than the first
        default:
          break;
      }
      in.push_back(make(s));
      f.seq = s.seq + static_cast<std::uint32_t>(s.payload);
      f.id = static_cast<std::uint16_t>(s.id + 1);
      f.tsval = s.tsval;
      f.fill = static_cast<std::uint8_t>(f.fill + 1);
    }
    tun::gro::Coalescer c;
    Written w = through(c, in);
    REQUIRE(w.packets == in);
    CHECK(w.writes <= in.size());
  }
}
