// Header codec tests: round trips over packet traces recorded from real traffic
// (testdata/traces/*.pcap, see testdata/traces/record.sh), mutations of real packets, and
// garbage for the decompressor.

#include "src/codec/header_codec.hpp"

#include <doctest/doctest.h>
#include <netinet/in.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "src/base/bytes.hpp"
#include "src/base/checksum.hpp"
#include "src/base/test_packets.hpp"

namespace {

using Bytes = std::vector<std::uint8_t>;

// --- Checksums, as a sender computes them (base::checksum, tested against a naive sum) ----------

using base::load_be16;
using base::load_be32;
using base::store_be16;
namespace checksum = base::checksum;

// Where a packet's TCP/UDP header is, if it has one we can checksum.
struct L4 {
  std::size_t off = 0;  // offset of the L4 header
  std::uint8_t proto = 0;
  std::size_t csum_at = 0;  // offset of the checksum field
  bool ok = false;
};

L4 find_l4(const Bytes& p) {
  L4 l4;
  if (p.size() < 20) return l4;
  if ((p[0] >> 4) == 4) {
    l4.off = (p[0] & 15) * 4u;
    l4.proto = p[9];
    if ((load_be16(&p[6]) & 0x1fff) != 0) return l4;  // not the first fragment
  } else if ((p[0] >> 4) == 6 && p.size() >= 40) {
    l4.off = 40;
    l4.proto = p[6];
  } else {
    return l4;
  }
  if (l4.proto != IPPROTO_TCP && l4.proto != IPPROTO_UDP) return l4;
  l4.csum_at = l4.off + (l4.proto == IPPROTO_TCP ? 16 : 6);
  l4.ok = l4.csum_at + 2 <= p.size();
  return l4;
}

// The pseudo-header sum (not folded).
std::uint32_t pseudo(const Bytes& p, const L4& l4) {
  std::uint32_t len = static_cast<std::uint32_t>(p.size() - l4.off);
  std::uint32_t acc = 0;
  if ((p[0] >> 4) == 4) {
    acc = checksum::add({&p[12], 8});
  } else {
    acc = checksum::add({&p[8], 32});
    acc += len >> 16;
  }
  return acc + (len & 0xffff) + l4.proto;
}

enum class Csum { complete, partial, none };

// Rewrites the IPv4 header checksum and the TCP/UDP checksum as a sender would.
void fix_checksums(Bytes& p, Csum how) {
  if (p.size() >= 20 && (p[0] >> 4) == 4) {
    std::size_t ihl = (p[0] & 15) * 4u;
    if (ihl >= 20 && ihl <= p.size()) {
      store_be16(&p[10], 0);
      store_be16(&p[10], checksum::internet({p.data(), ihl}));
    }
  }
  L4 l4 = find_l4(p);
  if (!l4.ok) return;
  store_be16(&p[l4.csum_at], 0);
  if (how == Csum::none) return;
  if (how == Csum::partial) {
    store_be16(&p[l4.csum_at], checksum::add({}, pseudo(p, l4)));
    return;
  }
  std::uint16_t sum = checksum::internet({&p[l4.off], p.size() - l4.off}, pseudo(p, l4));
  if (l4.proto == IPPROTO_UDP && sum == 0) sum = 0xffff;
  store_be16(&p[l4.csum_at], sum);
}

bool is_partial(const Bytes& p) {
  L4 l4 = find_l4(p);
  return l4.ok && load_be16(&p[l4.csum_at]) == checksum::add({}, pseudo(p, l4));
}

// --- Traces -----------------------------------------------------------------------------------

std::filesystem::path trace_dir() {
  if (const char* dir = std::getenv("HC_TRACES")) return dir;
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "testdata" /
         "traces";
}

struct TracePacket {
  Bytes bytes;
  bool partial = false;
};

// Reads a LINKTYPE_RAW pcap of header-only records and rebuilds each packet: the recorded
// headers, a deterministic payload up to the recorded length, and the TCP/UDP checksum
// recomputed over it (kept partial when the recorded one was the partial pseudo-header sum, kept
// 0 for UDP without checksum).
std::vector<TracePacket> load_trace(const std::string& name) {
  std::vector<TracePacket> out;
  std::filesystem::path path = trace_dir() / name;
  FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE_MESSAGE(f, "cannot open ", path.string());
  std::uint32_t gh[6];
  REQUIRE(std::fread(gh, 4, 6, f) == 6);
  REQUIRE(gh[0] == 0xa1b2c3d4);
  REQUIRE(gh[5] == 101);
  std::uint32_t rh[4];
  std::mt19937 rng(7);
  while (std::fread(rh, 4, 4, f) == 4) {
    REQUIRE(rh[2] <= rh[3]);
    REQUIRE(rh[3] <= 65535 + 40);
    TracePacket tp;
    tp.bytes.resize(rh[3]);
    REQUIRE(std::fread(tp.bytes.data(), 1, rh[2], f) == rh[2]);
    for (std::size_t i = rh[2]; i < rh[3]; ++i) tp.bytes[i] = static_cast<std::uint8_t>(rng());
    tp.partial = is_partial(tp.bytes);
    L4 l4 = find_l4(tp.bytes);
    bool udp_none = l4.ok && l4.proto == IPPROTO_UDP && load_be16(&tp.bytes[l4.csum_at]) == 0;
    if (rh[2] < rh[3] || !tp.partial)
      fix_checksums(tp.bytes, tp.partial ? Csum::partial : udp_none ? Csum::none : Csum::complete);
    out.push_back(std::move(tp));
  }
  std::fclose(f);
  return out;
}

bool from_client(const Bytes& p) {
  if ((p[0] >> 4) == 4) return p[12] == 10 && p[13] == 77 && p[14] == 0 && p[15] == 1;
  static const std::uint8_t client6[16] = {0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return std::memcmp(&p[8], client6, 16) == 0;
}

// One direction of a tunnel: a Compressor and the Decompressor on the far side of its stream.
struct Channel {
  codec::Compressor tx;
  codec::Decompressor rx;
  std::size_t checked = 0;
  std::size_t max_expansion = 0;
  explicit Channel(std::size_t contexts = 1024) : tx(contexts) {}

  // Sends packet through; returns the message and checks the far side gets it back exactly.
  Bytes send(const Bytes& packet, bool partial) {
    std::uint8_t out[codec::kMaxEncodedSize];
    codec::Encoded enc = tx.encode(packet, out, partial);
    REQUIRE(enc.written >= 1);
    REQUIRE(enc.written <= codec::kMaxEncodedSize);
    REQUIRE(enc.header_len <= packet.size());
    REQUIRE(enc.written <= enc.header_len + codec::kMaxExpansion);
    max_expansion = std::max(max_expansion, enc.written);
    Bytes msg(out, out + enc.written);
    msg.insert(msg.end(), packet.begin() + static_cast<std::ptrdiff_t>(enc.header_len),
               packet.end());
    std::uint8_t hdr[codec::kMaxHeaderSize];
    codec::Decoded dec;
    codec::Error e = rx.decode(msg, hdr, dec);
    REQUIRE_MESSAGE(e == codec::Error::none, "decode: ", codec::to_string(e));
    CHECK(dec.form == enc.form);
    REQUIRE(dec.consumed <= msg.size());
    Bytes back(hdr, hdr + dec.header_len);
    back.insert(back.end(), msg.begin() + static_cast<std::ptrdiff_t>(dec.consumed), msg.end());
    REQUIRE(back == packet);
    ++checked;
    return msg;
  }

  double average() const {
    const codec::Stats& s = tx.stats();
    return s.packets ? static_cast<double>(s.compressed_header_bytes) / s.packets : 0;
  }
  double inner_average() const {
    const codec::Stats& s = tx.stats();
    return s.packets ? static_cast<double>(s.inner_header_bytes) / s.packets : 0;
  }
  std::string summary() const {
    const codec::Stats& s = tx.stats();
    char text[200];
    std::snprintf(
        text, sizeof text,
        "%5llu packets, header %5.1f -> %5.2f bytes (full %llu, diff %llu, "
        "compressed %llu, escaped %llu)",
        static_cast<unsigned long long>(s.packets), inner_average(), average(),
        static_cast<unsigned long long>(s.full), static_cast<unsigned long long>(s.full_diff),
        static_cast<unsigned long long>(s.compressed), static_cast<unsigned long long>(s.escaped));
    return text;
  }
};

struct TraceResult {
  Channel client{}, server{};  // client -> server, server -> client
};

// Both directions of a trace through their own channels. force_partial: every TCP/UDP
// checksum is turned into the partial pseudo-header sum first.
void run_trace(const std::string& name, TraceResult& r, bool force_partial = false) {
  std::vector<TracePacket> trace = load_trace(name);
  REQUIRE(trace.size() > 100);
  for (TracePacket& tp : trace) {
    if (force_partial && find_l4(tp.bytes).ok) {
      fix_checksums(tp.bytes, Csum::partial);
      tp.partial = true;
    }
    (from_client(tp.bytes) ? r.client : r.server).send(tp.bytes, tp.partial);
  }
  CHECK(r.client.checked + r.server.checked == trace.size());
}

}  // namespace

TEST_CASE("header codec: recorded traces round-trip byte for byte; compressed sizes") {
  struct Case {
    const char* file;
    const char* client_label;
    const char* server_label;
  };
  const Case cases[] = {
      {"bulk_v4.pcap", "bulk TCP/IPv4 data", "bulk TCP/IPv4 ACKs"},
      {"bulk_v4_gso.pcap", "bulk TCP/IPv4 GSO data (partial csum)", "bulk TCP/IPv4 GSO ACKs"},
      {"rr_v4.pcap", "request/response TCP/IPv4 requests", "request/response TCP/IPv4 responses"},
      {"interactive_v4.pcap", "interactive TCP/IPv4 keystrokes", "interactive TCP/IPv4 echoes"},
      {"bulk_v6.pcap", "bulk TCP/IPv6 data", "bulk TCP/IPv6 ACKs"},
      {"udp_v4.pcap", "UDP/IPv4 stream", "UDP/IPv4 replies"},
      {"udp_v6.pcap", "UDP/IPv6 requests", "UDP/IPv6 replies"},
  };
  std::ostringstream report;
  for (const Case& c : cases) {
    std::string name = c.file;
    CAPTURE(name);
    TraceResult r;
    run_trace(c.file, r);
    report << "\n  " << c.client_label << ": " << r.client.summary();
    report << "\n  " << c.server_label << ": " << r.server.summary();
    // The target: at most 6 bytes per TCP/IPv4 header on a bulk transfer and on its ACKs
    // (checked on the IPv6 and GSO variants too).
    std::string file = c.file;
    if (file == "bulk_v4.pcap" || file == "bulk_v4_gso.pcap" || file == "bulk_v6.pcap") {
      CHECK(r.client.average() <= 6.0);
      CHECK(r.server.average() <= 6.0);
    }
    // The same packets with partial checksums (as read from a TUN with offloads).
    TraceResult partial;
    run_trace(c.file, partial, true);
  }
  MESSAGE(
      "average compressed header per packet (all packets of the direction, FULL and "
      "escapes included):"
      << report.str());
}

TEST_CASE("header codec: flows sharing one stream, contexts evicted, forgotten, reset") {
  std::vector<TracePacket> a = load_trace("bulk_v4.pcap");
  std::vector<TracePacket> b = load_trace("rr_v4.pcap");
  std::vector<TracePacket> c = load_trace("interactive_v4.pcap");
  // Everything into one channel, interleaved, with room for only 3 contexts: the 30 request /
  // response connections and the iperf3 connections keep evicting each other.
  Channel small(3);
  Channel big;
  std::mt19937 rng(11);
  std::size_t ia = 0, ib = 0, ic = 0;
  while (ia < a.size() || ib < b.size() || ic < c.size()) {
    unsigned pick = rng() % 3;
    const TracePacket* tp = nullptr;
    if (pick == 0 && ia < a.size()) tp = &a[ia++];
    if (pick == 1 && ib < b.size()) tp = &b[ib++];
    if (pick == 2 && ic < c.size()) tp = &c[ic++];
    if (!tp) continue;
    small.send(tp->bytes, tp->partial);
    big.send(tp->bytes, tp->partial);
  }
  CHECK(small.tx.stats().evicted > 0);
  CHECK(small.tx.contexts() <= 3);
  CHECK(big.tx.stats().evicted == 0);
  CHECK(big.average() < small.average());
  MESSAGE("three traces interleaved on one stream: " << big.summary()
                                                     << "; with 3 contexts: " << small.summary());

  // New connections to the same server start from the previous one's first header (DIFF),
  // also when that context is the one evicted for the new flow (one context only).
  for (std::size_t contexts : {1, 2, 1024}) {
    Channel one(contexts);
    for (const TracePacket& tp : b)
      if (from_client(tp.bytes)) one.send(tp.bytes, tp.partial);
    CHECK(one.tx.stats().full_diff >= 29);  // 30 connections
    MESSAGE("request/response requests with " << contexts << " contexts: " << one.summary());
  }
  {
    codec::Decompressor fresh;
    std::uint8_t out[codec::kMaxEncodedSize], hdr[codec::kMaxHeaderSize];
    codec::Compressor tx;
    codec::Decoded dec;
    std::size_t diffs = 0;
    for (const TracePacket& tp : b) {
      codec::Encoded enc = tx.encode(tp.bytes, out, tp.partial);
      if (enc.form != codec::Form::full || out[0] < 4) continue;
      Bytes msg(out, out + enc.written);  // a DIFF whose base the fresh side never saw
      msg.insert(msg.end(), tp.bytes.begin() + static_cast<std::ptrdiff_t>(enc.header_len),
                 tp.bytes.end());
      CHECK(fresh.decode(msg, hdr, dec) == codec::Error::unknown_context);
      ++diffs;
    }
    CHECK(diffs >= 58);
  }

  // forget(): the next packet of the flow starts again with FULL; the far side needs no notice.
  std::vector<const Bytes*> data;  // the bulk transfer's data packets
  for (const TracePacket& tp : a)
    if (from_client(tp.bytes) && tp.bytes.size() > 1000) data.push_back(&tp.bytes);
  REQUIRE(data.size() > 10);
  Channel ch;
  ch.send(*data[0], false);
  ch.send(*data[1], false);
  base::packet::PacketView view;
  REQUIRE(base::packet::parse(*data[1], view) == base::packet::ParseError::none);
  CHECK(ch.tx.forget(base::packet::FlowKey::of(view)));
  CHECK_FALSE(ch.tx.forget(base::packet::FlowKey::of(view)));
  ch.send(*data[2], false);
  CHECK(ch.tx.stats().full == 2);

  // reset() on both sides: compressed messages made before are refused (a FULL one would
  // still be understood: it carries the whole header), the next packet is FULL again.
  Bytes old = ch.send(*data[3], false);
  CHECK(ch.tx.stats().compressed == 2);
  ch.tx.reset();
  ch.rx.reset();
  std::uint8_t hdr[codec::kMaxHeaderSize];
  codec::Decoded dec;
  CHECK(ch.rx.decode(old, hdr, dec) == codec::Error::unknown_context);
  ch.send(*data[4], false);
  CHECK(ch.tx.stats().full == 3);
}

namespace {

// A TCP packet over IPv4 with the given options, checksummed.
Bytes tcp4(const std::vector<std::uint8_t>& options, std::size_t payload = 100) {
  Bytes p = base::test_packets::ipv4("10.1.0.1", "10.2.0.1", IPPROTO_TCP, 40000, 80, 0);
  p.insert(p.end(), options.begin(), options.end());
  p[32] = static_cast<std::uint8_t>((20 + options.size()) / 4 << 4);
  p[33] = 0x10;
  p[34] = 0x01;  // window 256
  for (std::size_t i = 0; i < payload; ++i) p.push_back(static_cast<std::uint8_t>(i));
  store_be16(&p[2], static_cast<std::uint16_t>(p.size()));
  p[6] = 0x40;  // DF
  fix_checksums(p, Csum::complete);
  return p;
}

// Random mutations of real packets: anything may change; the packet must come back exactly.
void mutate(Bytes& p, std::mt19937& rng, Csum& how) {
  auto coin = [&](unsigned in) { return rng() % in == 0; };
  bool v4 = (p[0] >> 4) == 4;
  L4 l4 = find_l4(p);
  // TCP offsets below are relative to ip: the TCP header (after any IPv4 options).
  std::size_t ip = l4.ok ? l4.off : v4 ? 20 : 40;
  bool tcp = l4.ok && l4.proto == IPPROTO_TCP && p.size() >= ip + 20;
  switch (rng() % 20) {
    case 0:  // TOS / traffic class, ECN bits included
      if (v4)
        p[1] = static_cast<std::uint8_t>(rng());
      else
        p[1] = static_cast<std::uint8_t>((p[1] & 0x0f) | (rng() & 0xf0));
      break;
    case 1:  // TTL / hop limit
      p[v4 ? 8 : 7] = static_cast<std::uint8_t>(rng());
      break;
    case 2:  // IPv4 ID jump / IPv6 flow label
      if (v4)
        store_be16(&p[4], static_cast<std::uint16_t>(rng()));
      else
        p[2] = static_cast<std::uint8_t>(rng());
      break;
    case 3:  // DF / reserved bit, sometimes a fragment
      if (v4) p[6] = static_cast<std::uint8_t>(coin(3) ? rng() : rng() & 0xc0);
      break;
    case 4:  // big sequence / acknowledgment jumps
      if (tcp) {
        std::uint32_t v = static_cast<std::uint32_t>(rng());
        std::memcpy(&p[ip + 4 + 4 * (rng() % 2)], &v, 4);
      }
      break;
    case 5:  // small backwards sequence step (a retransmission)
      if (tcp) {
        std::uint32_t seq = load_be32(&p[ip + 4]) - static_cast<std::uint32_t>(rng() % 3000);
        for (int i = 0; i < 4; ++i) p[ip + 4 + i] = static_cast<std::uint8_t>(seq >> (24 - 8 * i));
      }
      break;
    case 6:  // flags (any)
      if (tcp) p[ip + 13] = static_cast<std::uint8_t>(rng());
      break;
    case 7:  // reserved bits / AE
      if (tcp) p[ip + 12] = static_cast<std::uint8_t>((p[ip + 12] & 0xf0) | (rng() & 0x0f));
      break;
    case 8:  // window
      if (tcp) store_be16(&p[ip + 14], static_cast<std::uint16_t>(rng()));
      break;
    case 9:  // urgent pointer
      if (tcp) store_be16(&p[ip + 18], static_cast<std::uint16_t>(coin(2) ? 0 : rng()));
      break;
    case 10:  // timestamps
      if (tcp && p.size() >= ip + 32 && (p[ip + 12] >> 4) >= 8 && p[ip + 22] == 8) {
        for (int i = 0; i < 8; ++i) p[ip + 24 + i] ^= static_cast<std::uint8_t>(rng());
      }
      break;
    case 11:
    case 12: {  // new options: SACK blocks, unknown options, garbage, none
      if (!tcp) break;
      std::size_t old_len = (p[ip + 12] >> 4) * 4u;
      if (old_len < 20 || ip + old_len > p.size()) break;
      std::vector<std::uint8_t> opts;
      switch (rng() % 5) {
        case 0: {  // NOP NOP TS NOP NOP SACK(n)
          opts = {1, 1, 8, 10};
          for (int i = 0; i < 8; ++i) opts.push_back(static_cast<std::uint8_t>(rng()));
          [[fallthrough]];
        }
        case 1: {
          unsigned n = 1 + rng() % (opts.empty() ? 4 : 3);
          opts.insert(opts.end(), {1, 1, 5, static_cast<std::uint8_t>(2 + 8 * n)});
          std::uint32_t ack = load_be32(&p[ip + 8]);
          for (unsigned i = 0; i < 2 * n; ++i) {
            std::uint32_t v = ack + static_cast<std::uint32_t>(rng() % 100000);
            if (coin(5)) v = static_cast<std::uint32_t>(rng());
            for (int b = 0; b < 4; ++b)
              opts.push_back(static_cast<std::uint8_t>(v >> (24 - 8 * b)));
          }
          break;
        }
        case 2:  // an unknown option (kind 253, experimental) and padding
          opts = {253, 6, static_cast<std::uint8_t>(rng()), 0x11, 0x22, 0x33, 1, 0};
          break;
        case 3:  // garbage
          opts.resize(4 * (rng() % 11));
          for (auto& b : opts) b = static_cast<std::uint8_t>(rng());
          break;
        default:  // none
          break;
      }
      p.erase(p.begin() + static_cast<std::ptrdiff_t>(ip + 20),
              p.begin() + static_cast<std::ptrdiff_t>(ip + old_len));
      p.insert(p.begin() + static_cast<std::ptrdiff_t>(ip + 20), opts.begin(), opts.end());
      p[ip + 12] = static_cast<std::uint8_t>(((20 + opts.size()) / 4) << 4 | (p[ip + 12] & 15));
      break;
    }
    case 13: {  // payload length change
      std::size_t header = ip + (tcp ? (p[ip + 12] >> 4) * 4u : 8);
      std::size_t size = p.size() + rng() % 200;
      p.resize(std::max(header, size >= 100 ? size - 100 : 0));
      break;
    }
    case 14:  // IPv4 options (escape) / IPv6 extension header (escape)
      if (v4) {
        p.insert(p.begin() + 20, {1, 1, 1, 0});
        p[0] = 0x46;
      } else {
        p.insert(p.begin() + 40, {p[6], 0, 1, 4, 0, 0, 0, 0});  // hop-by-hop, PadN
        p[6] = 0;
      }
      break;
    case 15:  // wrong checksum (escape)
      how = Csum::complete;
      if (l4.ok) p[l4.csum_at] ^= 0x5a;
      return;  // lengths fixed below, checksums left wrong
    case 16:   // UDP without checksum
      how = Csum::none;
      break;
    case 17:  // partial checksum
      how = Csum::partial;
      break;
    case 18:  // trailing bytes after the IP packet (escape)
      p.push_back(0xee);
      return;
    default:  // a wrong IPv4 header checksum
      if (v4) {
        p[10] ^= 1;
        return;
      }
      break;
  }
  // Lengths as a sender would set them.
  if (v4) {
    store_be16(&p[2], static_cast<std::uint16_t>(p.size()));
  } else {
    store_be16(&p[4], static_cast<std::uint16_t>(p.size() - 40));
  }
  L4 after = find_l4(p);
  if (after.ok && after.proto == IPPROTO_UDP)
    store_be16(&p[after.off + 4], static_cast<std::uint16_t>(p.size() - after.off));
  if (how == Csum::none && !(after.ok && after.proto == IPPROTO_UDP)) how = Csum::complete;
  fix_checksums(p, how);
}

}  // namespace

TEST_CASE("header codec: mutated real packets still round-trip (escapes or deltas)") {
  const char* files[] = {"bulk_v4.pcap", "rr_v4.pcap",  "bulk_v6.pcap",
                         "udp_v4.pcap",  "udp_v6.pcap", "interactive_v4.pcap"};
  std::mt19937 rng(1234);
  std::size_t mutated = 0, total = 0;
  codec::Stats sum;
  for (const char* file : files) {
    std::string name = file;
    CAPTURE(name);
    std::vector<TracePacket> trace = load_trace(file);
    for (int round = 0; round < 3; ++round) {
      Channel up, down;
      for (const TracePacket& tp : trace) {
        Bytes p = tp.bytes;
        Csum how = tp.partial ? Csum::partial : Csum::complete;
        if (rng() % 3 == 0) {
          int n = 1 + static_cast<int>(rng() % 3);
          for (int i = 0; i < n && p.size() >= 48; ++i) mutate(p, rng, how);
          ++mutated;
        }
        ++total;
        L4 l4 = find_l4(p);
        bool partial = how == Csum::partial && l4.ok;
        (from_client(tp.bytes) ? up : down).send(p, partial && is_partial(p));
      }
      for (Channel* ch : {&up, &down}) {
        sum.packets += ch->tx.stats().packets;
        sum.escaped += ch->tx.stats().escaped;
        sum.full += ch->tx.stats().full;
        sum.compressed += ch->tx.stats().compressed;
      }
    }
  }
  MESSAGE("mutations: " << total << " packets, " << mutated << " mutated; " << sum.compressed
                        << " compressed, " << sum.full << " full, " << sum.escaped << " escaped");
  CHECK(sum.escaped > 0);
  CHECK(sum.compressed > sum.packets / 2);
}

TEST_CASE("header codec: rollback() of messages that could not be sent") {
  // Every third encode() is "blocked": rolled back, not delivered, and encoded again later
  // (sometimes after other packets), as the gateway does under backpressure.
  const char* files[] = {"bulk_v4.pcap", "rr_v4.pcap", "udp_v4.pcap", "bulk_v4_gso.pcap"};
  std::mt19937 rng(5);
  for (const char* file : files) {
    std::string name = file;
    CAPTURE(name);
    std::vector<TracePacket> trace = load_trace(file);
    Channel plain, blocked(4);
    Channel reference(4);
    std::size_t same = 0, rolled = 0;
    for (const TracePacket& tp : trace) {
      if (rng() % 3 == 0) {
        std::uint8_t out[codec::kMaxEncodedSize];
        codec::Encoded first = blocked.tx.encode(tp.bytes, out, tp.partial);
        Bytes first_msg(out, out + first.written);
        codec::Stats before = blocked.tx.stats();
        blocked.tx.rollback();
        CHECK(blocked.tx.stats().packets + 1 == before.packets);
        blocked.tx.rollback();  // a second time: nothing
        ++rolled;
        if (rng() % 2 == 0) {
          Bytes msg = blocked.send(tp.bytes, tp.partial);
          same += Bytes(msg.begin(), msg.begin() + static_cast<std::ptrdiff_t>(first.written)) ==
                  first_msg;
          reference.send(tp.bytes, tp.partial);
          continue;
        }
        // Blocked for good (dropped): the far side never sees the packet.
        continue;
      }
      blocked.send(tp.bytes, tp.partial);
      reference.send(tp.bytes, tp.partial);
    }
    CHECK(rolled > 100);
    // Re-encoded after a rollback, a packet is encoded as it would have been without it.
    CHECK(same * 2 >= rolled - rolled / 10);
    CHECK(blocked.tx.stats().packets == reference.tx.stats().packets);
    MESSAGE(std::string(file) << " with rollbacks: " << blocked.summary()
                              << "; without: " << reference.summary());
  }
}

TEST_CASE("header codec: what is escaped, what is compressed") {
  Channel ch;
  Bytes base = tcp4({1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2});
  CHECK(ch.tx.encode(base, std::span<std::uint8_t>(), false).written == 0);  // no room at all
  std::uint8_t tiny[8];
  CHECK(ch.tx.encode(base, tiny, false).form == codec::Form::escape);  // too little room
  ch.send(base, false);
  CHECK(ch.tx.stats().full == 1);
  Bytes next = base;
  store_be16(&next[4], static_cast<std::uint16_t>(load_be16(&next[4]) + 1));
  std::uint32_t seq = load_be32(&next[24]) + 100;
  for (int i = 0; i < 4; ++i) next[24 + i] = static_cast<std::uint8_t>(seq >> (24 - 8 * i));
  fix_checksums(next, Csum::complete);
  Bytes msg = ch.send(next, false);
  CHECK(msg.size() - 100 == 1);  // one byte: same flow, seq advanced by the payload, ID + 1

  SUBCASE("non-TCP/UDP, IP options, fragments, extension headers, bad checksums escape") {
    Bytes icmp = base::test_packets::ipv4("10.1.0.1", "10.2.0.1", IPPROTO_ICMP, 0, 0, 30);
    fix_checksums(icmp, Csum::complete);
    std::uint8_t out[codec::kMaxEncodedSize];
    CHECK(ch.tx.encode(icmp, out).form == codec::Form::escape);
    Bytes frag = next;
    frag[6] = 0x20;  // MF
    fix_checksums(frag, Csum::complete);
    CHECK(ch.tx.encode(frag, out).form == codec::Form::escape);
    Bytes bad = next;
    bad[36] ^= 1;  // TCP checksum
    CHECK(ch.tx.encode(bad, out).form == codec::Form::escape);
    CHECK(ch.tx.encode(next, out, true).form == codec::Form::escape);  // not a partial checksum
    Bytes v6 = base::test_packets::ipv6("fd00::1", "fd00::2", IPPROTO_UDP, 1, 2, 10);
    v6.insert(v6.begin() + 40, {IPPROTO_UDP, 0, 1, 4, 0, 0, 0, 0});
    v6[6] = 0;  // hop-by-hop options
    store_be16(&v6[4], static_cast<std::uint16_t>(v6.size() - 40));
    CHECK(ch.tx.encode(v6, out).form == codec::Form::escape);
    Bytes trailing = next;
    trailing.push_back(0);
    CHECK(ch.tx.encode(trailing, out).form == codec::Form::escape);
    CHECK(ch.tx.stats().escaped == 7);
    for (const Bytes* p : {&icmp, &frag, &bad, &v6, &trailing}) ch.send(*p, false);
  }
  SUBCASE("UDP without checksum, with partial checksum, over IPv4 and IPv6") {
    for (bool v6 : {false, true}) {
      Bytes u = v6 ? base::test_packets::ipv6("fd00::1", "fd00::2", IPPROTO_UDP, 5000, 53, 40)
                   : base::test_packets::ipv4("10.1.0.1", "10.2.0.1", IPPROTO_UDP, 5000, 53, 40);
      std::size_t ip = v6 ? 40 : 20;
      store_be16(&u[ip + 4], static_cast<std::uint16_t>(u.size() - ip));
      for (int i = 0; i < 20; ++i) {
        Csum how = i < 8 ? Csum::none : i < 14 ? Csum::complete : Csum::partial;
        if (!v6) store_be16(&u[4], static_cast<std::uint16_t>(i * 3));
        fix_checksums(u, how);
        Bytes m = ch.send(u, how == Csum::partial);
        if (i > 0 && i != 8 && i != 14) CHECK(m.size() - 40 <= (v6 ? 1u : 2u));
      }
    }
  }
  SUBCASE("a UDP checksum that computes to 0 is sent as 0xffff and kept") {
    Bytes u = base::test_packets::ipv4("10.1.0.1", "10.2.0.1", IPPROTO_UDP, 5000, 53, 2);
    store_be16(&u[24], 10);
    // Choose the payload so that the checksum computes to 0 (sum of the rest 0xffff).
    fix_checksums(u, Csum::complete);
    std::uint16_t c = load_be16(&u[26]);
    std::uint16_t payload = load_be16(&u[28]);
    store_be16(&u[28], checksum::add({}, std::uint32_t{payload} + c));
    fix_checksums(u, Csum::complete);
    CHECK(load_be16(&u[26]) == 0xffff);
    ch.send(u, false);
    ch.send(u, false);
  }
}

TEST_CASE("header codec: garbage, truncated and stale messages are refused without harm") {
  std::vector<TracePacket> trace = load_trace("bulk_v4.pcap");
  std::vector<TracePacket> rr = load_trace("rr_v4.pcap");
  std::vector<TracePacket> udp = load_trace("udp_v6.pcap");
  Channel ch;
  std::vector<Bytes> msgs;
  for (std::size_t i = 0; i < 300; ++i) msgs.push_back(ch.send(trace[i].bytes, trace[i].partial));
  for (std::size_t i = 0; i < 200; ++i) msgs.push_back(ch.send(rr[i].bytes, rr[i].partial));
  for (std::size_t i = 0; i < 100; ++i) msgs.push_back(ch.send(udp[i].bytes, udp[i].partial));

  std::uint8_t hdr[codec::kMaxHeaderSize];
  codec::Decoded dec;
  codec::Decompressor fresh;
  CHECK(fresh.decode({}, hdr, dec) == codec::Error::empty);
  const Bytes escape_only = {0};
  CHECK(fresh.decode(escape_only, hdr, dec) == codec::Error::truncated);
  const Bytes implicit_tcp = {0x80, 1, 2, 3};
  CHECK(fresh.decode(implicit_tcp, hdr, dec) == codec::Error::unknown_context);
  const Bytes unknown_cid = {0xc0, 0x05, 1, 2, 3};
  CHECK(fresh.decode(unknown_cid, hdr, dec) == codec::Error::unknown_context);
  const Bytes bad_form = {0x3f, 1, 2};
  CHECK(fresh.decode(bad_form, hdr, dec) == codec::Error::unknown_form);
  const Bytes udp_reserved = {0x41, 1, 2};
  CHECK(fresh.decode(udp_reserved, hdr, dec) == codec::Error::unknown_context);
  const Bytes huge_cid = {0xc0, 0xff, 0xff, 0x7f, 1};
  CHECK(fresh.decode(huge_cid, hdr, dec) == codec::Error::bad_field);
  const Bytes overlong_cid = {0xc0, 0x80, 0x00, 1};
  CHECK(fresh.decode(overlong_cid, hdr, dec) == codec::Error::bad_field);
  std::uint8_t small[10];
  for (const Bytes& m : msgs) {
    if (m[0] != 1) continue;  // the first FULL message
    CHECK(fresh.decode(m, small, dec) == codec::Error::no_room);
    break;
  }

  // Each message cut anywhere inside its compressed header is an error for the decompressor
  // in the state in which it would have received it.
  codec::Decompressor replay;
  std::size_t cuts = 0;
  for (const Bytes& m : msgs) {
    codec::Decoded whole;
    codec::Decompressor probe = replay;
    REQUIRE(probe.decode(m, hdr, whole) == codec::Error::none);
    std::size_t header_end = whole.form == codec::Form::escape ? 1 : whole.consumed;
    for (std::size_t cut = 0; cut < header_end; ++cut) {
      codec::Decompressor copy = replay;
      CHECK(copy.decode(std::span(m).first(cut), hdr, dec) != codec::Error::none);
      ++cuts;
    }
    REQUIRE(replay.decode(m, hdr, whole) == codec::Error::none);
  }

  // A payload that would make the packet longer than its IP length field allows.
  {
    codec::Decompressor copy = replay;
    const Bytes& last = msgs.back();  // a compressed UDP/IPv6 message
    codec::Decoded whole;
    REQUIRE(codec::Decompressor(replay).decode(last, hdr, whole) == codec::Error::none);
    Bytes longer(last.begin(), last.begin() + static_cast<std::ptrdiff_t>(whole.consumed));
    longer.resize(70000, 0x11);
    CHECK(copy.decode(longer, hdr, dec) == codec::Error::too_long);
  }

  // A TCP form for the UDP context and vice versa.
  {
    codec::Decompressor copy = replay;
    const Bytes tcp_on_udp = {0x80, 1, 2, 3};  // implicit context: the last, a UDP one
    CHECK(copy.decode(tcp_on_udp, hdr, dec) == codec::Error::wrong_context);
    const Bytes udp_bits = {0x47, 1, 2, 3};  // reserved bits
    CHECK(copy.decode(udp_bits, hdr, dec) == codec::Error::bad_field);
  }

  // Random bytes, and real messages with random bytes flipped, against a decompressor with
  // live contexts: errors or some packet, but never out of bounds (ASan/UBSan builds check).
  std::mt19937 rng(99);
  std::size_t errors = 0, decoded = 0;
  for (int i = 0; i < 200000; ++i) {
    Bytes m;
    if (i % 2) {
      m.resize(rng() % 64);
      for (auto& b : m) b = static_cast<std::uint8_t>(rng());
      if (!m.empty() && i % 4 == 1) m[0] = static_cast<std::uint8_t>(0x80 | (m[0] & 0x3f));
    } else {
      m = msgs[rng() % msgs.size()];
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips && !m.empty(); ++f)
        m[rng() % std::min<std::size_t>(m.size(), 24)] ^=
            static_cast<std::uint8_t>(1u << (rng() % 8));
    }
    codec::Decompressor copy = replay;
    codec::Error e = copy.decode(m, hdr, dec);
    if (e == codec::Error::none) {
      ++decoded;
      CHECK(dec.header_len <= sizeof hdr);
      CHECK(dec.consumed <= m.size());
    } else {
      ++errors;
    }
  }
  MESSAGE("garbage: " << cuts << " truncations refused; random/flipped messages: " << errors
                      << " refused, " << decoded << " decoded into some packet");
}

TEST_CASE("header codec: the decompressor's context memory is bounded per stream and per budget") {
  codec::Compressor tx(16);
  std::size_t budget = 6;
  codec::Decompressor a(4, &budget), b(4, &budget);
  std::uint8_t out[codec::kMaxEncodedSize], hdr[codec::kMaxHeaderSize];
  auto full_for = [&](std::uint16_t port) {
    auto p = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_UDP, port, 53, 4);
    store_be16(&p[24], static_cast<std::uint16_t>(p.size() - 20));  // the UDP length
    fix_checksums(p, Csum::complete);
    codec::Encoded e = tx.encode(p, out);
    REQUIRE(e.header_len > 0);  // not an escape: it sets up a context
    std::vector<std::uint8_t> msg(out, out + e.written);
    msg.insert(msg.end(), p.begin() + static_cast<std::ptrdiff_t>(e.header_len), p.end());
    return msg;
  };
  std::vector<std::vector<std::uint8_t>> msgs;
  for (std::uint16_t port = 1; port <= 5; ++port) msgs.push_back(full_for(port));  // cids 0..4
  codec::Decoded d;
  for (int i = 0; i < 4; ++i) CHECK(a.decode(msgs[i], hdr, d) == codec::Error::none);
  CHECK(a.decode(msgs[4], hdr, d) == codec::Error::no_room);  // cid 4: beyond this stream's 4
  CHECK(budget == 2);
  CHECK(b.decode(msgs[0], hdr, d) == codec::Error::none);
  CHECK(b.decode(msgs[1], hdr, d) == codec::Error::none);
  CHECK(b.decode(msgs[2], hdr, d) == codec::Error::no_room);  // the shared budget is spent
  a.reset();
  CHECK(budget == 4);
  CHECK(b.decode(msgs[2], hdr, d) == codec::Error::none);
}
