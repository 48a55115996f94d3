// tun::VnetHdr and tun::gso. Super-packets are built here as the kernel hands them out of a TUN
// with TSO offloads (partial checksum: the pseudo-header sum in the TCP checksum field), and
// every segment is checked with a checksum function of the test's own. Every input lives in a
// vector of exactly its size, so a run under ASan catches any read past it.

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "tun/gso.hpp"

#include "src/base/bytes.hpp"
#include "src/base/checksum.hpp"
#include "tun/linux_tun_test_util.hpp"
#include "tun/netlink.hpp"
#include "tun/vnet.hpp"

namespace {

using Bytes = std::vector<std::uint8_t>;
using tun::VnetHdr;

constexpr std::uint8_t kFin = 0x01, kSyn = 0x02, kPsh = 0x08, kAck = 0x10, kEce = 0x40, kCwr = 0x80;

// The test's own RFC 1071 sum, byte pair by byte pair: sum of the big-endian words of
// p[from, to) (odd tail padded) plus initial, folded, not complemented.
std::uint32_t ref_sum(std::span<const std::uint8_t> p, std::size_t from, std::size_t to,
                      std::uint32_t initial = 0) {
  std::uint32_t sum = initial;
  for (std::size_t i = from; i < to; i += 2) {
    sum += static_cast<std::uint32_t>(p[i] << 8) + (i + 1 < to ? p[i + 1] : 0u);
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return (sum & 0xffff) + (sum >> 16);
}

// The pseudo-header sum (addresses, protocol, L4 length) of an IPv4 or IPv6 packet whose L4
// header starts at l4 and that ends at p.size().
std::uint32_t ref_pseudo(std::span<const std::uint8_t> p, std::size_t l4, std::uint8_t proto) {
  const bool v6 = p[0] >> 4 == 6;
  const std::uint32_t addrs = v6 ? ref_sum(p, 8, 40) : ref_sum(p, 12, 20);
  return ref_sum({}, 0, 0, addrs + proto + static_cast<std::uint32_t>(p.size() - l4));
}

// True when the L4 checksum of p verifies (the sum over pseudo-header and segment is 0xffff).
bool l4_checksum_ok(std::span<const std::uint8_t> p, std::size_t l4, std::uint8_t proto) {
  return ref_sum(p, l4, p.size(), ref_pseudo(p, l4, proto)) == 0xffff;
}
bool ipv4_header_ok(std::span<const std::uint8_t> p) {
  return ref_sum(p, 0, (p[0] & 0x0fu) * 4u) == 0xffff;
}

std::uint8_t payload_byte(std::size_t i) {
  return static_cast<std::uint8_t>(i * 7 + (i >> 8));
}

struct Spec {
  bool v6 = false;
  std::size_t payload = 5000;
  std::uint16_t mss = 1448;
  std::uint8_t tcp_flags = kAck | kPsh;
  std::uint16_t ip_id = 0xfffe;     // wraps during segmentation
  std::uint32_t seq = 0xfffff000u;  // wraps during segmentation
  bool ts_option = true;            // 12 bytes of options: NOP NOP timestamp
};

// A TCP super-packet as read from a TUN with TSO: IPv4 (DF, valid header checksum) or IPv6, TCP
// with the pseudo-header sum (over the whole super-packet's length) in its checksum field.
Bytes make_super(const Spec& s) {
  const std::size_t l4 = s.v6 ? 40 : 20, tcp_len = s.ts_option ? 32 : 20;
  Bytes p(l4 + tcp_len + s.payload, 0);
  if (s.v6) {
    p[0] = 0x60, p[1] = 0x01, p[2] = 0x23, p[3] = 0x45;  // flow label 0x12345
    base::store_be16(p, 4, static_cast<std::uint32_t>(p.size() - 40));
    p[6] = 6, p[7] = 64;
    const std::uint8_t src[16] = {0xfd, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    const std::uint8_t dst[16] = {0xfd, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    std::memcpy(&p[8], src, 16);
    std::memcpy(&p[24], dst, 16);
  } else {
    p[0] = 0x45, p[1] = 0x02;  // ECT(0)
    base::store_be16(p, 2, static_cast<std::uint32_t>(p.size()));
    base::store_be16(p, 4, s.ip_id);
    base::store_be16(p, 6, 0x4000);  // DF
    p[8] = 64, p[9] = 6;
    const std::uint8_t addrs[8] = {10, 1, 0, 1, 10, 2, 0, 2};
    std::memcpy(&p[12], addrs, 8);
    base::store_be16(p, 10, ~ref_sum(p, 0, 20) & 0xffff);
  }
  base::store_be16(p, l4, 40000);
  base::store_be16(p, l4 + 2, 5201);
  base::store_be32(p, l4 + 4, s.seq);
  base::store_be32(p, l4 + 8, 0x11223344);
  p[l4 + 12] = static_cast<std::uint8_t>(tcp_len / 4 << 4);
  p[l4 + 13] = s.tcp_flags;
  base::store_be16(p, l4 + 14, 502);
  if (s.ts_option) {
    const std::uint8_t opt[12] = {1, 1, 8, 10, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 42};
    std::memcpy(&p[l4 + 20], opt, 12);
  }
  for (std::size_t i = 0; i < s.payload; i++) p[l4 + tcp_len + i] = payload_byte(i);
  base::store_be16(p, l4 + 16, ref_pseudo(p, l4, 6));
  return p;
}

VnetHdr gso_hdr(const Spec& s) {
  VnetHdr h;
  h.flags = VnetHdr::kNeedsCsum;
  h.gso_type = s.v6 ? VnetHdr::kGsoTcpV6 : VnetHdr::kGsoTcpV4;
  if (s.tcp_flags & kCwr) h.gso_type |= VnetHdr::kGsoEcn;
  h.hdr_len = static_cast<std::uint16_t>((s.v6 ? 40 : 20) + (s.ts_option ? 32 : 20));
  h.gso_size = s.mss;
  h.csum_start = s.v6 ? 40 : 20;
  h.csum_offset = 16;
  return h;
}

// Runs segment() and collects copies of what it emits.
struct Result {
  bool ok = false;
  std::vector<Bytes> packets;
};
Result run(tun::gso::Segmenter& seg, const VnetHdr& h, const Bytes& in) {
  Result r;
  r.ok = seg.segment(
      h, in, [&](std::span<const std::uint8_t> p) { r.packets.emplace_back(p.begin(), p.end()); });
  return r;
}
Result run(const VnetHdr& h, const Bytes& in) {
  tun::gso::Segmenter seg;
  return run(seg, h, in);
}

// Checks the segments of make_super(s) against everything segment() promises.
void check_segments(const Spec& s, const Bytes& super, const std::vector<Bytes>& segs) {
  const std::size_t l4 = s.v6 ? 40 : 20, headers = l4 + (s.ts_option ? 32 : 20);
  const std::size_t count = s.payload == 0 ? 1 : (s.payload + s.mss - 1) / s.mss;
  REQUIRE(segs.size() == count);
  Bytes joined;
  for (std::size_t i = 0; i < count; i++) {
    CAPTURE(i);
    const Bytes& p = segs[i];
    const bool first = i == 0, last = i + 1 == count;
    const std::size_t chunk = last ? s.payload - i * s.mss : s.mss;
    REQUIRE(p.size() == headers + chunk);
    if (s.v6) {
      CHECK(base::load_be16(p, 4) == p.size() - 40);
      CHECK(std::equal(p.begin(), p.begin() + 4, super.begin()));  // version, class, flow label
      CHECK(std::equal(p.begin() + 6, p.begin() + 40, super.begin() + 6));
    } else {
      CHECK(base::load_be16(p, 2) == p.size());
      CHECK(base::load_be16(p, 4) == static_cast<std::uint16_t>(s.ip_id + i));
      CHECK(base::load_be16(p, 6) == 0x4000);
      CHECK(ipv4_header_ok(p));
      CHECK(std::equal(p.begin() + 8, p.begin() + 10, super.begin() + 8));  // TTL, protocol
      CHECK(std::equal(p.begin() + 12, p.begin() + 20, super.begin() + 12));
    }
    CHECK(base::load_be32(p, l4 + 4) == static_cast<std::uint32_t>(s.seq + i * s.mss));
    CHECK(base::load_be32(p, l4 + 8) == base::load_be32(super, l4 + 8));
    std::uint8_t want = s.tcp_flags;
    if (!first) want &= static_cast<std::uint8_t>(~kCwr);
    if (!last) want &= static_cast<std::uint8_t>(~(kPsh | kFin));
    CHECK(p[l4 + 13] == want);
    CHECK(std::equal(p.begin() + static_cast<std::ptrdiff_t>(l4),
                     p.begin() + static_cast<std::ptrdiff_t>(l4 + 4),
                     super.begin() + static_cast<std::ptrdiff_t>(l4)));  // ports
    CHECK(std::equal(p.begin() + static_cast<std::ptrdiff_t>(l4 + 12),
                     p.begin() + static_cast<std::ptrdiff_t>(l4 + 13),
                     super.begin() + static_cast<std::ptrdiff_t>(l4 + 12)));  // data offset
    CHECK(std::equal(p.begin() + static_cast<std::ptrdiff_t>(l4 + 14),
                     p.begin() + static_cast<std::ptrdiff_t>(l4 + 16),
                     super.begin() + static_cast<std::ptrdiff_t>(l4 + 14)));  // window
    CHECK(std::equal(p.begin() + static_cast<std::ptrdiff_t>(l4 + 18),
                     p.begin() + static_cast<std::ptrdiff_t>(headers),
                     super.begin() + static_cast<std::ptrdiff_t>(l4 + 18)));  // urg, options
    CHECK(l4_checksum_ok(p, l4, 6));
    joined.insert(joined.end(), p.begin() + static_cast<std::ptrdiff_t>(headers), p.end());
  }
  CHECK(joined == Bytes(super.begin() + static_cast<std::ptrdiff_t>(headers), super.end()));
}

void check_split(const Spec& s) {
  const Bytes super = make_super(s);
  tun::gso::Segmenter seg;
  const Result r = run(seg, gso_hdr(s), super);
  REQUIRE(r.ok);
  check_segments(s, super, r.packets);
  CHECK(seg.segments() == r.packets.size());
}

// A good super-packet and its header, and a way of segmenting (segment() or segment_local()):
// whether it refuses a packet (fails and emits nothing), and changed copies of the two.
struct Refusals {
  std::function<Result(const VnetHdr&, const Bytes&)> run;
  Bytes good;
  VnetHdr good_hdr;
  bool refused(const VnetHdr& h, const Bytes& p) const {
    const Result r = run(h, p);
    return !r.ok && r.packets.empty();
  }
  template <typename Change>
  bool with_hdr(Change change) const {
    VnetHdr h = good_hdr;
    change(h);
    return refused(h, good);
  }
  template <typename Change>
  bool with_bytes(Change change) const {
    Bytes p = good;
    change(p);
    return refused(good_hdr, p);
  }
};

// Changes to a good TCP super-packet (IPv6 if v6, its TCP header at l4) that make it a packet
// neither segment() nor segment_local() takes.
void check_malformed_tcp(bool v6, std::size_t l4, const Refusals& t) {
  auto with_bytes = [&](auto change) { return t.with_bytes(change); };
  CHECK(with_bytes([&](Bytes& p) { p[v6 ? 6 : 9] = 17; }));  // UDP
  CHECK(with_bytes([&](Bytes& p) { p[l4 + 12] = 0x40; }));   // TCP data offset 4 < 5
  if (v6) {
    CHECK(with_bytes([](Bytes& p) { p[6] = 0; }));  // a hop-by-hop extension header
    CHECK(with_bytes([](Bytes& p) { base::store_be16(p, 4, base::load_be16(p, 4) - 1u); }));
    CHECK(with_bytes([](Bytes& p) { base::store_be16(p, 4, 0); }));  // jumbogram
  } else {
    CHECK(with_bytes([](Bytes& p) { p[0] = 0x44; }));  // IHL 4
    CHECK(with_bytes([](Bytes& p) { base::store_be16(p, 2, base::load_be16(p, 2) + 1u); }));
    CHECK(with_bytes([](Bytes& p) { base::store_be16(p, 2, base::load_be16(p, 2) - 1u); }));
    CHECK(with_bytes([](Bytes& p) { base::store_be16(p, 6, 0x2000); }));  // MF
    CHECK(with_bytes([](Bytes& p) { base::store_be16(p, 6, 0x0001); }));  // a fragment offset
  }
}

}  // namespace

TEST_CASE("vnet: VnetHdr loads and stores the 10-byte layout in host byte order") {
  VnetHdr h;
  h.flags = VnetHdr::kNeedsCsum;
  h.gso_type = VnetHdr::kGsoTcpV6 | VnetHdr::kGsoEcn;
  h.hdr_len = 0x0102, h.gso_size = 0x0304, h.csum_start = 0x0506, h.csum_offset = 0x0708;
  std::uint8_t raw[12];
  std::memset(raw, 0xaa, sizeof raw);
  h.store(raw);
  CHECK(raw[10] == 0xaa);  // exactly kVnetHdrSize bytes written
  CHECK(raw[0] == 1);
  CHECK(raw[1] == 0x84);
  if constexpr (std::endian::native == std::endian::little) {
    const std::uint8_t want[10] = {1, 0x84, 2, 1, 4, 3, 6, 5, 8, 7};
    CHECK(std::memcmp(raw, want, 10) == 0);
  }
  const auto back = VnetHdr::load(raw);
  REQUIRE(back.has_value());
  CHECK(*back == h);
  CHECK(back->gso_kind() == VnetHdr::kGsoTcpV6);
  CHECK(VnetHdr::load(std::span<const std::uint8_t>(raw, 10)).has_value());
  CHECK_FALSE(VnetHdr::load(std::span<const std::uint8_t>(raw, 9)).has_value());
  CHECK_FALSE(VnetHdr::load({}).has_value());

  CHECK(VnetHdr{}.is_plain());
  VnetHdr valid;
  valid.flags = VnetHdr::kDataValid;
  CHECK(valid.is_plain());
  CHECK_FALSE(h.is_plain());
  VnetHdr csum;
  csum.flags = VnetHdr::kNeedsCsum;
  CHECK_FALSE(csum.is_plain());
  VnetHdr ecn_only;
  ecn_only.gso_type = VnetHdr::kGsoEcn;
  CHECK_FALSE(ecn_only.is_plain());
  CHECK(tun::kVnetHdrSize == 10);
}

TEST_CASE("gso: base::checksum::add matches a byte-by-byte RFC 1071 sum") {
  std::mt19937 rng(7);
  for (std::size_t n : {0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 63, 1500, 65535}) {
    CAPTURE(n);
    Bytes b(n);
    for (auto& x : b) x = static_cast<std::uint8_t>(rng());
    CHECK(base::checksum::add(b) == ref_sum(b, 0, n));
    CHECK(base::checksum::add(b, 0x1fffe) == ref_sum(b, 0, n, 0x1fffe));
  }
  const Bytes ones(4096, 0xff);
  CHECK(base::checksum::add(ones) == 0xffff);
}

TEST_CASE("gso: a TCPv4 super-packet of 5000 bytes becomes 4 checksummed segments") {
  Spec s;
  s.tcp_flags = kAck | kPsh | kFin | kCwr | kEce;
  check_split(s);
  const Bytes super = make_super(s);
  const Result r = run(gso_hdr(s), super);
  REQUIRE(r.packets.size() == 4);
  CHECK(r.packets[0].size() == 52 + 1448);
  CHECK(r.packets[3].size() == 52 + 5000 - 3 * 1448);
  CHECK(base::load_be16(r.packets[1], 4) == 0xffff);  // 0xfffe + 1
  CHECK(base::load_be16(r.packets[2], 4) == 0x0000);  // wrapped
  CHECK(base::load_be32(r.packets[3], 24) == 248);    // 0xfffff000 + 3 * 1448, wrapped
  CHECK(r.packets[0][33] == (kAck | kCwr | kEce));
  CHECK(r.packets[1][33] == (kAck | kEce));
  CHECK(r.packets[3][33] == (kAck | kPsh | kFin | kEce));

  Spec plain_options = s;
  plain_options.ts_option = false;
  plain_options.tcp_flags = kAck;
  check_split(plain_options);
}

TEST_CASE("gso: a TCPv6 super-packet of 5000 bytes becomes 4 checksummed segments") {
  Spec s;
  s.v6 = true;
  s.tcp_flags = kAck | kPsh | kFin | kCwr;
  check_split(s);
  s.ts_option = false;
  s.mss = 1220;
  s.payload = 60000;
  check_split(s);
}

TEST_CASE("gso: a payload that is a multiple of gso_size, and unusual sizes") {
  for (bool v6 : {false, true}) {
    CAPTURE(v6);
    Spec s;
    s.v6 = v6;
    s.payload = 3 * 1448;
    check_split(s);
    s.payload = 65535 - 20 - 32 - (v6 ? 20 : 0);  // the largest super-packet
    s.mss = 536;
    check_split(s);
    s.payload = 129;  // an odd payload, the smallest gso_size accepted
    s.mss = 64;
    check_split(s);
    s.payload = 65535 - 20 - 32 - (v6 ? 20 : 0);  // 1024 segments on IPv4: the most accepted
    check_split(s);
  }
}

TEST_CASE("gso: a single-segment GSO packet comes out whole with its checksum completed") {
  for (bool v6 : {false, true}) {
    CAPTURE(v6);
    for (std::size_t payload : {1000, 1448, 0}) {
      CAPTURE(payload);
      Spec s;
      s.v6 = v6;
      s.payload = payload;
      s.tcp_flags = kAck | kPsh | kFin | kCwr;
      const Bytes super = make_super(s);
      const Result r = run(gso_hdr(s), super);
      REQUIRE(r.ok);
      check_segments(s, super, r.packets);
      Bytes completed = super;
      REQUIRE(tun::gso::complete_checksum(gso_hdr(s), completed));
      CHECK(r.packets[0] == completed);  // nothing but the checksum changed
    }
  }
}

TEST_CASE("gso: packets without GSO: plain ones pass as they are, partial checksums completed") {
  Spec s;
  s.payload = 700;
  const Bytes in = make_super(s);
  tun::gso::Segmenter seg;

  VnetHdr plain;  // e.g. after the checksum was completed elsewhere: passed without a look
  std::vector<std::span<const std::uint8_t>> seen;
  CHECK(seg.segment(plain, in, [&](std::span<const std::uint8_t> p) { seen.push_back(p); }));
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].data() == in.data());
  CHECK(seen[0].size() == in.size());

  VnetHdr csum;
  csum.flags = VnetHdr::kNeedsCsum;
  csum.csum_start = 20;
  csum.csum_offset = 16;
  csum.hdr_len = 52;
  const Result r = run(seg, csum, in);
  REQUIRE(r.ok);
  REQUIRE(r.packets.size() == 1);
  CHECK(r.packets[0].size() == in.size());
  CHECK(l4_checksum_ok(r.packets[0], 20, 6));
  Bytes expected = in;
  base::store_be16(expected, 36, 0);
  base::store_be16(expected, 36,
                   ~ref_sum(expected, 20, expected.size(), ref_pseudo(expected, 20, 6)));
  CHECK(r.packets[0] == expected);
  CHECK(seg.segments() == 0);  // no GSO involved

  csum.csum_start = static_cast<std::uint16_t>(in.size() - 2);
  csum.csum_offset = 1;  // the field would end one byte past the packet
  CHECK_FALSE(run(seg, csum, in).ok);
}

TEST_CASE("gso: complete_checksum on a UDP packet, bounds and the 0 -> 0xffff rule") {
  for (bool v6 : {false, true}) {
    CAPTURE(v6);
    const std::size_t l4 = v6 ? 40 : 20, payload = 333;  // odd length: a padded last word
    Bytes p(l4 + 8 + payload, 0);
    if (v6) {
      p[0] = 0x60, p[6] = 17, p[7] = 64;
      base::store_be16(p, 4, static_cast<std::uint32_t>(8 + payload));
      p[8] = 0xfd, p[23] = 1, p[24] = 0xfd, p[39] = 2;
    } else {
      p[0] = 0x45, p[8] = 64, p[9] = 17;
      base::store_be16(p, 2, static_cast<std::uint32_t>(p.size()));
      p[12] = 10, p[15] = 1, p[16] = 10, p[19] = 2;
      base::store_be16(p, 10, ~ref_sum(p, 0, 20) & 0xffff);
    }
    base::store_be16(p, l4, 5353);
    base::store_be16(p, l4 + 2, 53);
    base::store_be16(p, l4 + 4, static_cast<std::uint32_t>(8 + payload));
    for (std::size_t i = 0; i < payload; i++) p[l4 + 8 + i] = payload_byte(i * 3);
    base::store_be16(p, l4 + 6, ref_pseudo(p, l4, 17));

    VnetHdr h;
    h.flags = VnetHdr::kNeedsCsum;
    h.csum_start = static_cast<std::uint16_t>(l4);
    h.csum_offset = 6;
    Bytes done = p;
    REQUIRE(tun::gso::complete_checksum(h, done));
    CHECK(l4_checksum_ok(done, l4, 17));
    CHECK(std::equal(done.begin(), done.begin() + static_cast<std::ptrdiff_t>(l4 + 6), p.begin()));
    CHECK(std::equal(done.begin() + static_cast<std::ptrdiff_t>(l4 + 8), done.end(),
                     p.begin() + static_cast<std::ptrdiff_t>(l4 + 8)));

    // Adjust a payload word so the checksum comes out 0: UDP must then carry 0xffff.
    const std::uint16_t c = base::load_be16(done, l4 + 6);
    const std::uint32_t w = base::load_be16(p, l4 + 8) + std::uint32_t{c};
    base::store_be16(p, l4 + 8, (w & 0xffff) + (w >> 16));
    Bytes zero = p;
    REQUIRE(tun::gso::complete_checksum(h, zero));
    CHECK(base::load_be16(zero, l4 + 6) == 0xffff);
    CHECK(l4_checksum_ok(zero, l4, 17));

    // Without kNeedsCsum nothing happens; offsets past the end are refused, packet untouched.
    VnetHdr none = h;
    none.flags = VnetHdr::kDataValid;
    Bytes same = p;
    CHECK(tun::gso::complete_checksum(none, same));
    CHECK(same == p);
    VnetHdr edge = h;
    edge.csum_start = static_cast<std::uint16_t>(p.size() - 2), edge.csum_offset = 0;
    CHECK(tun::gso::complete_checksum(edge, same));  // the field is the last two bytes: fine
    same = p;
    for (auto [start, offset] : {std::pair<int, int>{static_cast<int>(p.size()) - 1, 0},
                                 {static_cast<int>(p.size()), 0},
                                 {0, static_cast<int>(p.size()) - 1},
                                 {0xffff, 0xffff}}) {
      VnetHdr bad = h;
      bad.csum_start = static_cast<std::uint16_t>(start);
      bad.csum_offset = static_cast<std::uint16_t>(offset);
      CHECK_FALSE(tun::gso::complete_checksum(bad, same));
    }
    CHECK(same == p);
    Bytes empty;
    h.csum_start = 0, h.csum_offset = 0;
    CHECK_FALSE(tun::gso::complete_checksum(h, empty));
  }
}

TEST_CASE("gso: malformed super-packets are refused without emitting anything") {
  for (bool v6 : {false, true}) {
    CAPTURE(v6);
    Spec s;
    s.v6 = v6;
    const std::size_t l4 = v6 ? 40 : 20;
    const Bytes good = make_super(s);
    const VnetHdr good_hdr = gso_hdr(s);
    REQUIRE(run(good_hdr, good).ok);

    const Refusals t{[](const VnetHdr& h, const Bytes& p) { return run(h, p); }, good, good_hdr};

    CHECK(t.with_hdr([](VnetHdr& h) { h.gso_size = 0; }));
    CHECK(t.with_hdr([&](VnetHdr& h) { h.hdr_len = static_cast<std::uint16_t>(good.size() + 1); }));
    CHECK(t.with_hdr([](VnetHdr& h) { h.gso_type = VnetHdr::kGsoUdp; }));
    CHECK(t.with_hdr([](VnetHdr& h) { h.gso_type = VnetHdr::kGsoUdpL4; }));
    CHECK(t.with_hdr([](VnetHdr& h) { h.gso_type = VnetHdr::kGsoEcn; }));
    CHECK(t.with_hdr([](VnetHdr& h) { h.gso_type = 2; }));
    CHECK(t.with_hdr([&](VnetHdr& h) {  // the other family's type
      h.gso_type = v6 ? VnetHdr::kGsoTcpV4 : VnetHdr::kGsoTcpV6;
    }));
    CHECK(t.with_hdr([](VnetHdr& h) { h.csum_start++; }));
    CHECK(t.with_hdr([](VnetHdr& h) { h.csum_offset = 6; }));
    CHECK(t.with_hdr([](VnetHdr& h) { h.csum_start = 0xffff, h.csum_offset = 0xffff; }));

    CHECK(t.with_bytes([&](Bytes& p) { p[0] = static_cast<std::uint8_t>(v6 ? 0x45 : 0x65); }));
    check_malformed_tcp(v6, l4, t);

    // Every truncation: as cut (the length field disagrees), with the IP length field adjusted
    // (fine once the headers fit), and with a 60-byte TCP header claimed (past the end).
    for (std::size_t n = 0; n < l4 + 40; n++) {
      CAPTURE(n);
      const Bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
      CHECK(t.refused(good_hdr, cut));
      Bytes fixed = cut;
      if (n >= 6) base::store_be16(fixed, v6 ? 4 : 2, static_cast<std::uint32_t>(v6 ? n - 40 : n));
      VnetHdr h = good_hdr;
      h.hdr_len = static_cast<std::uint16_t>(l4 + 32);
      const Result r = run(h, fixed);
      CHECK(r.ok == (n >= l4 + 32));
      CHECK(r.packets.size() == (r.ok ? 1u : 0u));
      if (n >= l4 + 13) {
        fixed[l4 + 12] = 0xf0;
        CHECK(t.refused(h, fixed));
      }
    }
  }
}

TEST_CASE("gso: headers that a kernel would not make are refused, rule by rule") {
  for (bool v6 : {false, true}) {
    CAPTURE(v6);
    Spec s;
    s.v6 = v6;
    s.payload = 3000;
    const std::size_t l4 = v6 ? 40 : 20;
    const Bytes super = make_super(s);
    const VnetHdr gso = gso_hdr(s);
    auto accepted = [](const VnetHdr& h, const Bytes& p) {
      const Result r = run(h, p);
      CHECK(r.ok == !r.packets.empty());
      return r.ok;
    };
    auto with = [](VnetHdr h, auto change) {
      change(h);
      return h;
    };
    REQUIRE(accepted(gso, super));

    // 1: GSO only with a partial checksum.
    CHECK_FALSE(accepted(with(gso, [](VnetHdr& h) { h.flags = 0; }), super));
    CHECK_FALSE(accepted(with(gso, [](VnetHdr& h) { h.flags = VnetHdr::kDataValid; }), super));

    // 2: the checksum field is that of TCP or UDP, in the L4 header. Without GSO too.
    VnetHdr csum;
    csum.flags = VnetHdr::kNeedsCsum;
    csum.csum_start = static_cast<std::uint16_t>(l4);
    csum.csum_offset = 16;
    CHECK(accepted(csum, super));
    CHECK_FALSE(accepted(with(csum, [](VnetHdr& h) { h.csum_start += 4; }), super));
    CHECK_FALSE(accepted(with(csum, [](VnetHdr& h) { h.csum_offset = 6; }), super));
    CHECK_FALSE(
        accepted(with(csum, [](VnetHdr& h) { h.csum_start -= 2, h.csum_offset = 18; }), super));
    auto relabel = [&](std::uint8_t protocol) {  // the same bytes as another L4 protocol
      Bytes p = super;
      p[v6 ? 6 : 9] = protocol;
      if (!v6) {
        base::store_be16(p, 10, 0);
        base::store_be16(p, 10, ~ref_sum(p, 0, 20) & 0xffff);
      }
      return p;
    };
    const Bytes udp = relabel(17);  // its checksum field is then at offset 6
    CHECK(accepted(with(csum, [](VnetHdr& h) { h.csum_offset = 6; }), udp));
    CHECK_FALSE(accepted(csum, udp));
    const Bytes other = relabel(47);  // GRE: no partial checksum of its own
    CHECK_FALSE(accepted(with(csum, [](VnetHdr& h) { h.csum_offset = 6; }), other));
    CHECK_FALSE(accepted(with(csum, [](VnetHdr& h) { h.csum_offset = 2; }), other));
    if (!v6) {
      Bytes fragment = udp;
      base::store_be16(fragment, 6, 0x2000);  // MF
      CHECK_FALSE(accepted(with(csum, [](VnetHdr& h) { h.csum_offset = 6; }), fragment));
    }

    // 3: hdr_len from the end of the TCP header to the end of the packet.
    const auto headers = static_cast<std::uint16_t>(l4 + 32);
    CHECK_FALSE(accepted(with(gso, [](VnetHdr& h) { h.hdr_len = 0; }), super));
    CHECK_FALSE(accepted(with(gso, [&](VnetHdr& h) { h.hdr_len = headers - 1; }), super));
    CHECK_FALSE(accepted(with(gso, [&](VnetHdr& h) { h.hdr_len = l4 + 20; }), super));
    CHECK(accepted(with(gso, [&](VnetHdr& h) { h.hdr_len = headers; }), super));
    const auto size = static_cast<std::uint16_t>(super.size());
    CHECK(accepted(with(gso, [&](VnetHdr& h) { h.hdr_len = size; }), super));
    CHECK_FALSE(accepted(with(gso, [&](VnetHdr& h) { h.hdr_len = size + 1; }), super));

    // 4: flags: kNeedsCsum or kDataValid, or none; nothing else, not both.
    for (std::uint8_t bit = 4; bit != 0; bit = static_cast<std::uint8_t>(bit << 1)) {
      CAPTURE(bit);
      CHECK_FALSE(accepted(with(gso, [&](VnetHdr& h) { h.flags |= bit; }), super));
      CHECK_FALSE(accepted(with(VnetHdr{}, [&](VnetHdr& h) { h.flags = bit; }), super));
    }
    CHECK_FALSE(accepted(with(gso, [](VnetHdr& h) { h.flags |= VnetHdr::kDataValid; }), super));
    CHECK(accepted(with(VnetHdr{}, [](VnetHdr& h) { h.flags = VnetHdr::kDataValid; }), super));

    // 5: gso_size of at least 64; the ECN bit only with TCP GSO.
    CHECK_FALSE(accepted(with(gso, [](VnetHdr& h) { h.gso_size = 1; }), super));
    CHECK_FALSE(accepted(with(gso, [](VnetHdr& h) { h.gso_size = 63; }), super));
    CHECK(accepted(with(gso, [](VnetHdr& h) { h.gso_size = 64; }), super));
    CHECK(accepted(with(gso, [](VnetHdr& h) { h.gso_type |= VnetHdr::kGsoEcn; }), super));
    CHECK_FALSE(accepted(with(csum, [](VnetHdr& h) { h.gso_type = VnetHdr::kGsoEcn; }), super));
    CHECK_FALSE(
        accepted(with(VnetHdr{}, [](VnetHdr& h) { h.gso_type = VnetHdr::kGsoEcn; }), super));
  }
}

TEST_CASE("gso: random headers and bytes are refused or segmented correctly (for ASan)") {
  std::mt19937 rng(99);
  tun::gso::Segmenter seg;
  for (int round = 0; round < 20000; round++) {
    Spec s;
    s.v6 = rng() & 1;
    s.payload = rng() % 3000;
    s.mss = static_cast<std::uint16_t>(1 + rng() % 1500);
    Bytes p = make_super(s);
    VnetHdr h = gso_hdr(s);
    for (int k = rng() % 3; k > 0; k--)
      p[rng() % std::min<std::size_t>(p.size(), 80)] ^= 1u << (rng() % 8);
    if (rng() % 4 == 0)
      p = Bytes(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(rng() % (p.size() + 1)));
    if (rng() % 4 == 0) {
      std::uint8_t raw[10];
      for (auto& x : raw) x = static_cast<std::uint8_t>(rng());
      raw[1] &= 0x87;
      h = *VnetHdr::load(raw);
    }
    std::size_t emitted = 0, bytes = 0;
    const bool ok = seg.segment(h, p, [&](std::span<const std::uint8_t> out) {
      emitted++;
      bytes += out.size();
      if (h.gso_kind() == VnetHdr::kGsoTcpV4 || h.gso_kind() == VnetHdr::kGsoTcpV6) {
        const std::size_t at = out[0] >> 4 == 6 ? 40 : (out[0] & 0x0fu) * 4u;
        CHECK(l4_checksum_ok(out, at, 6));
        if (at != 40) CHECK(ipv4_header_ok(out));
      }
    });
    if (!ok) CHECK(emitted == 0);
    if (ok && h.is_plain()) CHECK(bytes == p.size());
    // Our own kernel's entry: refused or correct too, from any first packet on; and whatever
    // segment() accepts, it accepts with the same packets.
    const std::size_t first = rng() % 4 == 0 ? rng() % 8 : 0;
    std::size_t local = 0;
    const bool local_ok = seg.segment_local(h, p, first, [&](std::span<const std::uint8_t> out) {
      local++;
      if (h.gso_kind() == VnetHdr::kGsoTcpV4 || h.gso_kind() == VnetHdr::kGsoTcpV6) {
        const std::size_t at = out[0] >> 4 == 6 ? 40 : (out[0] & 0x0fu) * 4u;
        CHECK(l4_checksum_ok(out, at, 6));
        if (at != 40) CHECK(ipv4_header_ok(out));
      }
      return rng() % 16 != 0;
    });
    if (!local_ok) CHECK(local == 0);
    if (ok && h.gso_kind() != VnetHdr::kGsoNone) CHECK(local_ok);
    Bytes copy = p;
    tun::gso::complete_checksum(h, copy);
  }
}

namespace {
// Runs segment_local() from packet `first` on, stopping after `limit` packets, and collects
// copies of what it emits.
Result run_local(tun::gso::Segmenter& seg, const VnetHdr& h, const Bytes& in, std::size_t first = 0,
                 std::size_t limit = SIZE_MAX) {
  Result r;
  r.ok = seg.segment_local(h, in, first, [&](std::span<const std::uint8_t> p) {
    r.packets.emplace_back(p.begin(), p.end());
    return r.packets.size() < limit;
  });
  return r;
}
Result run_local(const VnetHdr& h, const Bytes& in) {
  tun::gso::Segmenter seg;
  return run_local(seg, h, in);
}
}  // namespace

TEST_CASE("gso: segment_local segments what our own kernel makes, gso_size below 64 too") {
  for (bool v6 : {false, true}) {
    CAPTURE(v6);
    for (std::uint16_t mss : {1, 7, 36, 48, 63, 64, 536, 1448}) {
      CAPTURE(mss);
      Spec s;
      s.v6 = v6;
      s.payload = 1001;
      s.mss = mss;
      s.tcp_flags = kAck | kPsh | kFin | kCwr;
      const Bytes super = make_super(s);
      tun::gso::Segmenter seg;
      const Result r = run_local(seg, gso_hdr(s), super);
      REQUIRE(r.ok);
      check_segments(s, super, r.packets);
      CHECK(seg.segments() == r.packets.size());
      // Where the peer's rules accept the header too, both entries make the same packets.
      const Result strict = run(gso_hdr(s), super);
      CHECK(strict.ok == (mss >= tun::kMinGsoSize));
      if (strict.ok) CHECK(strict.packets == r.packets);
    }
    // The kernel's other habits the peer refuses: no kNeedsCsum, hdr_len 0, kDataValid.
    Spec s;
    s.v6 = v6;
    s.mss = 48;
    const Bytes super = make_super(s);
    VnetHdr h = gso_hdr(s);
    h.flags = VnetHdr::kDataValid;
    h.hdr_len = 0;
    h.csum_start = h.csum_offset = 0;
    const Result r = run_local(h, super);
    REQUIRE(r.ok);
    check_segments(s, super, r.packets);
  }
}

TEST_CASE("gso: segment_local of the largest super-packet with gso_size 1 stays bounded") {
  for (bool v6 : {false, true}) {
    CAPTURE(v6);
    Spec s;
    s.v6 = v6;
    s.payload = 65535 - 20 - 32 - (v6 ? 20 : 0);  // the IP length field's limit
    s.mss = 1;
    const Bytes super = make_super(s);
    tun::gso::Segmenter seg;
    std::size_t n = 0, largest = 0;
    Bytes joined;
    std::uint32_t last_seq = 0;
    const std::size_t l4 = v6 ? 40 : 20, headers = l4 + 32;
    REQUIRE(seg.segment_local(gso_hdr(s), super, 0, [&](std::span<const std::uint8_t> p) {
      n++;
      largest = std::max(largest, p.size());
      joined.insert(joined.end(), p.begin() + static_cast<std::ptrdiff_t>(headers), p.end());
      last_seq = base::load_be32(p, l4 + 4);
      return true;
    }));
    CHECK(n == s.payload);  // one segment per byte: at most 65535 - 40 - 20
    CHECK(largest == headers + 1);
    CHECK(last_seq == static_cast<std::uint32_t>(s.seq + s.payload - 1));
    CHECK(joined == Bytes(super.begin() + static_cast<std::ptrdiff_t>(headers), super.end()));
  }
}

TEST_CASE("gso: segment_local resumes at the first-th packet and stops when emit says so") {
  Spec s;
  s.payload = 1000;
  s.mss = 48;  // 21 segments
  const Bytes super = make_super(s);
  const VnetHdr h = gso_hdr(s);
  tun::gso::Segmenter seg;
  const Result all = run_local(seg, h, super);
  REQUIRE(all.ok);
  REQUIRE(all.packets.size() == 21);
  // In pieces of 4, each resuming where the last stopped: the same packets, each once.
  std::vector<Bytes> pieces;
  for (std::size_t first = 0; first < 21; first += 4) {
    const Result r = run_local(seg, h, super, first, 4);
    REQUIRE(r.ok);
    CHECK(r.packets.size() == std::min<std::size_t>(4, 21 - first));
    pieces.insert(pieces.end(), r.packets.begin(), r.packets.end());
  }
  CHECK(pieces == all.packets);
  for (std::size_t first : {21, 22, 1000}) {
    const Result r = run_local(seg, h, super, first);
    CHECK(r.ok);
    CHECK(r.packets.empty());
  }
  // A packet without GSO is packet 0: skipped from 1 on.
  VnetHdr csum = h;
  csum.gso_type = VnetHdr::kGsoNone;
  csum.gso_size = 0;
  CHECK(run_local(seg, csum, super, 0).packets.size() == 1);
  CHECK(run_local(seg, csum, super, 1).packets.empty());
  CHECK(run_local(seg, VnetHdr{}, super, 1).packets.empty());
  CHECK(run_local(seg, VnetHdr{}, super, 0).packets == std::vector<Bytes>{super});
}

TEST_CASE("gso: segment_local completes a partial checksum anywhere after the IP header") {
  for (bool v6 : {false, true}) {
    CAPTURE(v6);
    // An outer UDP packet whose payload is an inner IPv4/UDP packet: csum_start at the inner UDP
    // header, as the kernel leaves encapsulated traffic with local checksum offload.
    const std::size_t l4 = v6 ? 40 : 20, inner_ip = l4 + 8, inner_udp = inner_ip + 20;
    const std::size_t inner_payload = 201;
    Bytes p(inner_udp + 8 + inner_payload, 0);
    if (v6) {
      p[0] = 0x60, p[6] = 17, p[7] = 64;
      base::store_be16(p, 4, static_cast<std::uint32_t>(p.size() - 40));
      p[8] = 0xfd, p[23] = 1, p[24] = 0xfd, p[39] = 2;
    } else {
      p[0] = 0x45, p[8] = 64, p[9] = 17;
      base::store_be16(p, 2, static_cast<std::uint32_t>(p.size()));
      p[12] = 10, p[15] = 1, p[16] = 10, p[19] = 2;
      base::store_be16(p, 10, ~ref_sum(p, 0, 20) & 0xffff);
    }
    base::store_be16(p, l4 + 4, static_cast<std::uint32_t>(p.size() - l4));
    p[inner_ip] = 0x45, p[inner_ip + 8] = 64, p[inner_ip + 9] = 17;
    base::store_be16(p, inner_ip + 2, static_cast<std::uint32_t>(p.size() - inner_ip));
    p[inner_ip + 12] = 10, p[inner_ip + 15] = 3, p[inner_ip + 16] = 10, p[inner_ip + 19] = 4;
    base::store_be16(p, inner_udp + 4, static_cast<std::uint32_t>(8 + inner_payload));
    for (std::size_t i = 0; i < inner_payload; i++) p[inner_udp + 8 + i] = payload_byte(i);
    const Bytes inner_only(p.begin() + static_cast<std::ptrdiff_t>(inner_ip), p.end());
    base::store_be16(p, inner_udp + 6, ref_pseudo(inner_only, 20, 17));  // the partial sum

    VnetHdr h;
    h.flags = VnetHdr::kNeedsCsum;
    h.csum_start = static_cast<std::uint16_t>(inner_udp);
    h.csum_offset = 6;
    CHECK_FALSE(run(h, p).ok);  // the peer's rules refuse it
    const Result r = run_local(h, p);
    REQUIRE(r.ok);
    REQUIRE(r.packets.size() == 1);
    const Bytes& out = r.packets[0];
    CHECK(l4_checksum_ok(Bytes(out.begin() + static_cast<std::ptrdiff_t>(inner_ip), out.end()), 20,
                         17));
    Bytes expected = p;  // only the inner checksum changed
    base::store_be16(expected, inner_udp + 6, base::load_be16(out, inner_udp + 6));
    CHECK(out == expected);

    // Another protocol (GRE, say) with its checksum field somewhere: completed all the same.
    Bytes gre = p;
    gre[v6 ? 6 : 9] = 47;
    gre[l4 + 4] = gre[l4 + 5] = 0;  // the field: GRE's checksum has no pseudo-header sum
    if (!v6) base::store_be16(gre, 10, 0), base::store_be16(gre, 10, ~ref_sum(gre, 0, 20) & 0xffff);
    VnetHdr g;
    g.flags = VnetHdr::kNeedsCsum;
    g.csum_start = static_cast<std::uint16_t>(l4);
    g.csum_offset = 4;
    const Result rg = run_local(g, gre);
    REQUIRE(rg.ok);
    REQUIRE(rg.packets.size() == 1);
    CHECK(ref_sum(rg.packets[0], l4, gre.size()) == 0xffff);

    // Refused: a field in the IP header or past the end, an IP length other than the packet's.
    auto with_start = [](VnetHdr hdr, std::size_t start) {
      hdr.csum_start = static_cast<std::uint16_t>(start);
      return hdr;
    };
    CHECK_FALSE(run_local(with_start(h, l4 - 1), p).ok);
    CHECK_FALSE(run_local(with_start(h, 0), p).ok);
    VnetHdr past = h;
    past.csum_start = static_cast<std::uint16_t>(p.size() - 2);
    past.csum_offset = 1;
    CHECK_FALSE(run_local(past, p).ok);
    past.csum_offset = 0;  // the last two bytes: fine
    CHECK(run_local(past, p).ok);
    Bytes longer = p;
    longer.push_back(0);  // a trailing byte the IP length does not cover
    CHECK_FALSE(run_local(h, longer).ok);
    CHECK(run_local(h, longer).packets.empty());
  }
}

TEST_CASE("gso: segment_local refuses malformed packets without emitting anything") {
  for (bool v6 : {false, true}) {
    CAPTURE(v6);
    Spec s;
    s.v6 = v6;
    s.mss = 48;
    const std::size_t l4 = v6 ? 40 : 20;
    const Bytes good = make_super(s);
    const VnetHdr good_hdr = gso_hdr(s);
    REQUIRE(run_local(good_hdr, good).ok);
    const Refusals t{[](const VnetHdr& h, const Bytes& p) { return run_local(h, p); }, good,
                     good_hdr};
    CHECK(t.with_hdr([](VnetHdr& h) { h.gso_size = 0; }));
    CHECK(t.with_hdr([](VnetHdr& h) { h.gso_type = VnetHdr::kGsoUdp; }));
    CHECK(t.with_hdr([](VnetHdr& h) { h.gso_type = VnetHdr::kGsoUdpL4; }));
    CHECK(t.with_hdr([](VnetHdr& h) { h.gso_type = VnetHdr::kGsoEcn; }));
    CHECK(t.with_hdr([](VnetHdr& h) { h.gso_type = 2; }));
    CHECK(t.with_hdr([&](VnetHdr& h) {  // the other family's type
      h.gso_type = v6 ? VnetHdr::kGsoTcpV4 : VnetHdr::kGsoTcpV6;
    }));
    check_malformed_tcp(v6, l4, t);
    // Every truncation, as cut and with the IP length adjusted: refused until the IP and TCP
    // headers fit, never a read past the end (each cut lives in a vector of exactly its size).
    for (std::size_t n = 0; n < l4 + 40; n++) {
      CAPTURE(n);
      const Bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
      CHECK(t.refused(good_hdr, cut));
      Bytes fixed = cut;
      if (n >= 6) base::store_be16(fixed, v6 ? 4 : 2, static_cast<std::uint32_t>(v6 ? n - 40 : n));
      const Result r = run_local(good_hdr, fixed);
      CHECK(r.ok == (n >= l4 + 32));
      CHECK(r.packets.size() == (r.ok ? 1u : 0u));
      if (n >= l4 + 13) {
        fixed[l4 + 12] = 0xf0;  // a 60-byte TCP header claimed
        CHECK(t.refused(good_hdr, fixed));
      }
    }
  }
}

// Against the kernel: in a private network namespace, a TUN opened with IFF_VNET_HDR and TSO
// offloads, 10.9.0.0/24 and fd09::/64 routed into it. A local TCP socket connects to an address
// behind it; the test plays the far host (SYN-ACK, then ACKs) so that the kernel sends a 20 KB
// stream, which it hands out as TSO super-packets. Every packet goes through Segmenter; each
// result must be a fully checksummed packet no larger than the MTU, and the payloads together
// must be the stream that was sent.
namespace {

constexpr const char* kKernelDev = "gsotest0";
constexpr int kKernelMtu = 1500;
constexpr std::uint16_t kFarPort = 5201;

void expect(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("expected: " + what);
}

// Where the TCP header starts in p, an IPv4 or IPv6 (no extension headers) packet, or 0 if p is
// not TCP to kFarPort.
std::size_t tcp_to_far_port(std::span<const std::uint8_t> p) {
  if (p.size() < 20) return 0;
  std::size_t l4 = 0;
  if (p[0] >> 4 == 4 && p[9] == 6) l4 = (p[0] & 0x0fu) * 4u;
  if (p[0] >> 4 == 6 && p.size() >= 40 && p[6] == 6) l4 = 40;
  if (l4 == 0 || p.size() < l4 + 20 || base::load_be16(p, l4 + 2) != kFarPort) return 0;
  return l4;
}

// Reads one packet (vnet header first) from the TUN within timeout_ms; false if none came.
bool read_tun(int fd, Bytes& out, int timeout_ms) {
  pollfd pfd{fd, POLLIN, 0};
  if (::poll(&pfd, 1, timeout_ms) != 1) return false;
  out.resize(tun::kVnetHdrSize + 65536);
  const ssize_t n = ::read(fd, out.data(), out.size());
  expect(n >= static_cast<ssize_t>(tun::kVnetHdrSize), "read(tun) to give a vnet header");
  out.resize(static_cast<std::size_t>(n));
  return true;
}

// Writes, as the far host, a TCP packet answering `from` (a packet of the local socket) with a
// plain vnet header in front; SYN packets carry an MSS option of 1460.
void write_reply(int fd, std::span<const std::uint8_t> from, std::uint32_t seq, std::uint32_t ack,
                 std::uint8_t flags) {
  const bool v6 = from[0] >> 4 == 6;
  const std::size_t l4 = v6 ? 40 : 20, tcp_len = (flags & kSyn) ? 24 : 20;
  Bytes p(tun::kVnetHdrSize + l4 + tcp_len, 0);
  VnetHdr{}.store(p);
  Bytes ip(l4 + tcp_len, 0);
  if (v6) {
    ip[0] = 0x60, ip[6] = 6, ip[7] = 64;
    base::store_be16(ip, 4, static_cast<std::uint32_t>(tcp_len));
    std::copy_n(from.begin() + 24, 16, ip.begin() + 8);  // source: the far address
    std::copy_n(from.begin() + 8, 16, ip.begin() + 24);
  } else {
    ip[0] = 0x45, ip[8] = 64, ip[9] = 6;
    base::store_be16(ip, 2, static_cast<std::uint32_t>(ip.size()));
    std::copy_n(from.begin() + 16, 4, ip.begin() + 12);
    std::copy_n(from.begin() + 12, 4, ip.begin() + 16);
    base::store_be16(ip, 10, ~ref_sum(ip, 0, 20) & 0xffff);
  }
  const std::size_t from_l4 = tcp_to_far_port(from);
  base::store_be16(ip, l4, kFarPort);
  base::store_be16(ip, l4 + 2, base::load_be16(from, from_l4));
  base::store_be32(ip, l4 + 4, seq);
  base::store_be32(ip, l4 + 8, ack);
  ip[l4 + 12] = static_cast<std::uint8_t>(tcp_len / 4 << 4);
  ip[l4 + 13] = flags;
  base::store_be16(ip, l4 + 14, 65535);
  if (flags & kSyn) ip[l4 + 20] = 2, ip[l4 + 21] = 4, base::store_be16(ip, l4 + 22, 1460);
  base::store_be16(ip, l4 + 16, ~ref_sum(ip, l4, ip.size(), ref_pseudo(ip, l4, 6)) & 0xffff);
  std::copy(ip.begin(), ip.end(), p.begin() + tun::kVnetHdrSize);
  expect(::write(fd, p.data(), p.size()) == static_cast<ssize_t>(p.size()), "write(tun)");
}

// Returns what was seen, e.g. "IPv4: 2 GSO packets, up to 10 segments".
std::string kernel_stream(int tun_fd, bool v6) {
  const std::string family = v6 ? "IPv6: " : "IPv4: ";
  const std::uint32_t far_isn = 7000;
  Bytes sent(20000);
  for (std::size_t i = 0; i < sent.size(); i++) sent[i] = payload_byte(i * 13 + 5);

  tun::test_util::Fd sock(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
  const auto to = tun::test_util::SockAddr::parse(v6 ? "fd09::5" : "10.9.0.5", kFarPort);
  expect(::connect(sock.get(), to.get(), to.len) != 0 && errno == EINPROGRESS,
         family + "connect() in progress");

  // The handshake: every SYN (a retransmitted one too) gets a SYN-ACK until connect() is done.
  Bytes in;
  std::uint32_t isn = 0;
  bool connected = false;
  for (int waited_ms = 0; !connected && waited_ms < 5000; waited_ms += 50) {
    if (read_tun(tun_fd, in, 50)) {
      const std::span<const std::uint8_t> ip = std::span<const std::uint8_t>(in).subspan(10);
      const std::size_t l4 = tcp_to_far_port(ip);
      if (l4 != 0 && (ip[l4 + 13] & kSyn) != 0) {
        isn = base::load_be32(ip, l4 + 4);
        write_reply(tun_fd, ip, far_isn, isn + 1, kSyn | kAck);
      }
    }
    pollfd pfd{sock.get(), POLLOUT, 0};
    connected = ::poll(&pfd, 1, 0) == 1;
  }
  expect(connected, family + "the connection established");
  int error = -1;
  socklen_t error_len = sizeof error;
  ::getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &error, &error_len);
  expect(error == 0, family + "connect() succeeded, error " + std::to_string(error));

  tun::gso::Segmenter segmenter;
  Bytes got(sent.size());
  std::size_t queued = 0, acked = 0, gso_packets = 0, most_segments = 0;
  for (int idle = 0; acked < sent.size() && idle < 40;) {
    if (queued < sent.size()) {
      const ssize_t n = ::send(sock.get(), sent.data() + queued, sent.size() - queued, 0);
      if (n > 0) queued += static_cast<std::size_t>(n);
    }
    if (!read_tun(tun_fd, in, 50)) {
      idle++;
      continue;
    }
    const auto hdr = VnetHdr::load(in);
    const std::span<const std::uint8_t> ip = std::span<const std::uint8_t>(in).subspan(10);
    const std::size_t l4 = tcp_to_far_port(ip);
    if (l4 == 0) continue;  // router solicitations, MLD reports
    std::size_t segments = 0;
    const bool ok = segmenter.segment(*hdr, ip, [&](std::span<const std::uint8_t> p) {
      segments++;
      expect(p.size() <= static_cast<std::size_t>(kKernelMtu), family + "segments fit the MTU");
      expect(l4_checksum_ok(p, l4, 6), family + "a valid TCP checksum");
      expect(v6 || ipv4_header_ok(p), family + "a valid IPv4 header checksum");
      const std::size_t headers = l4 + (p[l4 + 12] >> 4) * 4u;
      const std::size_t offset = base::load_be32(p, l4 + 4) - (isn + 1);
      expect(offset + (p.size() - headers) <= sent.size(), family + "data within the stream");
      std::copy(p.begin() + static_cast<std::ptrdiff_t>(headers), p.end(),
                got.begin() + static_cast<std::ptrdiff_t>(offset));
      if (offset <= acked) acked = std::max(acked, offset + p.size() - headers);
    });
    expect(ok, family + "segment() accepts what the kernel hands out (gso_type " +
                   std::to_string(hdr->gso_type) + ")");
    if (hdr->gso_type != VnetHdr::kGsoNone) {
      expect(hdr->gso_kind() == (v6 ? VnetHdr::kGsoTcpV6 : VnetHdr::kGsoTcpV4) &&
                 (hdr->flags & VnetHdr::kNeedsCsum) && hdr->csum_start == l4 &&
                 hdr->csum_offset == 16,
             family + "the kernel's vnet header as documented");
      gso_packets++;
    }
    most_segments = std::max(most_segments, segments);
    write_reply(tun_fd, ip, far_isn + 1, isn + 1 + static_cast<std::uint32_t>(acked), kAck);
    idle = 0;
  }
  expect(acked == sent.size(), family + "the whole stream, got " + std::to_string(acked));
  expect(got == sent, family + "the payloads to make up the stream");
  expect(gso_packets > 0 && most_segments > 1,
         family + "at least one super-packet of several segments");
  return family + std::to_string(gso_packets) + " GSO packets, up to " +
         std::to_string(most_segments) + " segments";
}

// IPv6 only: an address added with NODAD can be bound to at once, but its local route comes a
// moment later (the kernel's DAD work inserts it, even with nothing to detect); until then a
// packet to it is forwarded, i.e. dropped (Ip6InAddrErrors). Waits up to 3 s for the route of
// addr (32 hex digits) to appear in /proc/net/ipv6_route.
void wait_for_local_route_v6(const std::string& addr) {
  for (int waited_ms = 0; waited_ms < 3000; waited_ms += 10) {
    std::FILE* routes = std::fopen("/proc/net/ipv6_route", "r");
    expect(routes != nullptr, "/proc/net/ipv6_route readable");
    char line[256];
    bool found = false;
    while (!found && std::fgets(line, sizeof line, routes)) {
      found = std::string(line).starts_with(addr + " 80 ");  // prefix length 128
    }
    std::fclose(routes);
    if (found) return;
    ::usleep(10000);
  }
  throw std::runtime_error("expected: the local route of " + addr);
}

std::string kernel_scenario() {
  tun::test_util::Fd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, kKernelDev, IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
  expect(::ioctl(fd.get(), TUNSETIFF, &ifr) == 0, "TUNSETIFF");
  int hdr_size = static_cast<int>(tun::kVnetHdrSize);
  expect(::ioctl(fd.get(), TUNSETVNETHDRSZ, &hdr_size) == 0, "TUNSETVNETHDRSZ");
  expect(::ioctl(fd.get(), TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) == 0,
         "TUNSETOFFLOAD");
  tun::Netlink nl;
  nl.set_mtu(kKernelDev, kKernelMtu);
  nl.set_up(kKernelDev);
  nl.add_address(kKernelDev, "10.255.0.1/30");
  nl.add_address(kKernelDev, "fd00::1/64");
  nl.add_route(kKernelDev, "10.9.0.0/24");
  nl.add_route(kKernelDev, "fd09::/64");
  wait_for_local_route_v6("fd000000000000000000000000000001");
  return kernel_stream(fd.get(), false) + "; " + kernel_stream(fd.get(), true);
}

}  // namespace

TEST_CASE("gso: kernel TSO super-packets from a vnet TUN, segmented (needs root)") {
  if (::geteuid() != 0) {
    FAIL(
        "this test needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for unshare(CLONE_NEWNET)); run "
        "unit_tests as root, or exclude it with --test-case-exclude='*needs root*'");
  }
  const tun::test_util::ChildOutcome child = tun::test_util::run_in_private_netns(
      kernel_scenario, 30);  // a hang becomes SIGALRM, not a stuck test run
  CHECK_MESSAGE(child.exited, "the child was killed by signal ", child.signal);
  CHECK_MESSAGE(child.ok(), "the child failed: ", child.text);
  MESSAGE("kernel: ", child.text);
}
