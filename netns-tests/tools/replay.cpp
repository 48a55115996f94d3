// replay: resends the IPv4 and IPv6 packets of a pcap file byte for byte through a raw socket (an
// on-path attacker replaying captured tunnel datagrams from their genuine source address), or
// with their source rewritten (an attacker at a third address passing captured datagrams off as
// its own).
//
//   replay --pcap FILE [--src ADDR] [--dst ADDR] [--udp-port P] [--rewrite-src ADDR:PORT]
//          [--rate PPS] [--timeout S] [--dry-run]
//          [--reflect S [--reflect-max N] [--tap IFACE]] [--forge-chunks LIST]
//
// Reads a classic pcap file (as `tcpdump -w` writes it: microsecond or nanosecond magic, either
// byte order; link type EN10MB, VLAN tags allowed), takes the IPv4 and IPv6 packets (optionally
// only those from --src, to --dst, with UDP source or destination port --udp-port; IPv6 packets
// whose first next header is not UDP count as other than UDP, fragments included) and sends each
// one unchanged (but see --rewrite-src) -- IP header included -- with socket(AF_INET or AF_INET6,
// SOCK_RAW, IPPROTO_RAW) to its own destination address. Packets cut short by the capture's snap
// length cannot be replayed exactly and are skipped (counted as "truncated"). The IPv4 header
// checksum and the UDP checksum of each packet are verified and the bad ones counted (a capture
// taken behind a checksum offload holds partial checksums; their replay would die in the receiver's
// UDP layer). For SCTP over UDP the DATA / I-DATA chunks of the replayed packets are counted (what
// the receiver's SCTP stack must recognise as duplicates). All of this is checked on the packets as
// captured.
// --rewrite-src ADDR:PORT (an IPv6 ADDR in brackets: [2001:db8::2]:40400) changes each selected
// packet of ADDR's family before it is sent (those of the other family are not selected): its
// source address becomes ADDR and, if it is UDP, its UDP source port becomes PORT; the IPv4 header
// checksum and the UDP checksum are then recomputed over the changed packet (an IPv4 UDP checksum
// of 0, "none", stays 0). Of a fragmented UDP datagram the first fragment gets the new port and its
// UDP checksum is adjusted for the changes (RFC 1624: the rest of the datagram is not at hand);
// later fragments only get the new address. The filters (--src, --dst, --udp-port) apply to the
// packets as captured. --rate PPS paces the sends (default 5000; 0: as fast as possible).
// --dry-run parses and counts but sends nothing. The sending is bounded by --timeout S (default
// 30).
// The attacker at ADDR:PORT can also answer (each needs --rewrite-src; a UDP socket bound to
// ADDR:PORT, made before the first packet goes out, so nothing sent to it is missed):
// --reflect S: while the packets go out and for S seconds (1..60) after, every datagram that
// arrives on that socket is sent back to its sender from the same socket, unchanged (what
// reflecting a gateway's own challenges and probes back to it looks like); at most
// --reflect-max N (default 200) datagrams in all, counted "reflected".
// --tap IFACE (with --reflect): also the UDP datagrams that IFACE shows addressed to other hosts
// (PACKET_OTHERHOST: a tap or mirror port, an on-path observer), of ADDR's family and, with
// --udp-port, from or to that port: their payload is sent from the socket to the address and
// port they came from, as if the attacker had sent them; counted "tapped", within the same N.
// --forge-chunks LIST (abort, shutdown, init; comma-separated, repeats allowed, at most 16):
// instead of replaying, takes the first selected UDP datagram that carries SCTP (non-zero SCTP
// ports, a valid CRC32c; bare or after the header of an FEC data datagram) and sends from the
// socket to its destination address and port one SCTP packet per entry with the same SCTP ports and
// verification tag and a valid CRC32c, carrying one chunk: ABORT (type 6, flags 0, length 4),
// SHUTDOWN (type 7, length 8, cumulative TSN ack 0) or INIT (type 1, length 20, a random initiate
// tag and initial TSN); counted "forged". Whoever saw one packet of an association can send these
// from anywhere. Prints one summary line on stdout:
//   replay: records=<n> ipv4=<n> ipv6=<n> selected=<n> replayed=<n> rewritten=<n> data_chunks=<n>
//           bytes=<n> truncated=<n> bad_ip_checksum=<n> bad_udp_checksum=<n> other=<n>
//           reflected=<n> tapped=<n> forged=<n> secs=<s>
// (rewritten: packets changed by --rewrite-src, 0 without it; other: records that are not IPv4 or
// IPv6 or not selected; bad_*_checksum: as captured, before any rewriting). Exit status: 0 if every
// selected packet was sent (or parsed, with --dry-run; with --forge-chunks: every forged packet)
// and at least one was selected; 1 if the file cannot be read or parsed, nothing was selected, a
// send failed, the timeout struck or --forge-chunks found no SCTP packet; 2 on bad usage.

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "sctp_checksum.hpp"
#include "src/base/bytes.hpp"
#include "src/base/checksum.hpp"
#include "tool_cli.hpp"

namespace {

using Clock = std::chrono::steady_clock;

using tool::Error;
using tool::number;
using tool::usage;

constexpr const char* kUsage =
    "usage: replay --pcap FILE [--src ADDR] [--dst ADDR] [--udp-port P]\n"
    "              [--rewrite-src ADDR:PORT] [--rate PPS] [--timeout S] [--dry-run]\n"
    "              [--reflect S [--reflect-max N] [--tap IFACE]] [--forge-chunks LIST]\n";

// An IPv4 or IPv6 address as it stands in a packet (network byte order).
struct Addr {
  std::uint8_t version = 4;
  std::uint8_t bytes[16] = {};
  std::size_t len() const { return version == 4 ? 4 : 16; }
  bool matches(std::uint8_t v, const std::uint8_t* a) const {
    return v == version && std::memcmp(a, bytes, len()) == 0;
  }
  bool unspecified() const {
    for (std::size_t i = 0; i < len(); ++i)
      if (bytes[i]) return false;
    return true;
  }
};

std::optional<Addr> address(const std::string& v) {
  Addr a;
  if (::inet_pton(AF_INET, v.c_str(), a.bytes) == 1) return a;
  a.version = 6;
  if (::inet_pton(AF_INET6, v.c_str(), a.bytes) == 1) return a;
  return std::nullopt;
}

Addr address(const std::string& key, const std::string& v) {
  std::optional<Addr> a = address(v);
  if (!a) usage(key + " must be an IPv4 or IPv6 address, not '" + v + "'");
  return *a;
}

struct Endpoint {
  Addr addr;
  std::uint16_t port;
};

// --rewrite-src ADDR:PORT or [ADDR6]:PORT: an address (not 0.0.0.0 or ::, which the kernel would
// replace with one of its own) and a UDP port from 1 to 65535.
Endpoint endpoint(const std::string& key, const std::string& v) {
  std::size_t colon = v.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == v.size())
    usage(key + " must be ADDR:PORT or [ADDR6]:PORT (an address and a UDP port), not '" + v + "'");
  std::string addr = v.substr(0, colon), port = v.substr(colon + 1);
  bool bracketed = addr.size() > 2 && addr.front() == '[' && addr.back() == ']';
  if (bracketed) addr = addr.substr(1, addr.size() - 2);
  std::optional<Addr> a = address(addr);
  if (!a || (a->version == 6) != bracketed)
    usage(key + ": '" + addr + "' in '" + v + "' is not an IPv4 address or a bracketed IPv6 one");
  if (a->unspecified())
    usage(key + ": the address must not be unspecified (the kernel would fill in its own)");
  return {*a, static_cast<std::uint16_t>(number(key + " port", port, 1, 65535))};
}

// The SCTP chunk types --forge-chunks knows.
constexpr std::uint8_t kInit = 1, kAbort = 6, kShutdown = 7;
// The header of an FEC data datagram before the SCTP packet it carries (src/fec/wire.hpp:
// 00 00 46 01|04, a 32-bit sequence number).
constexpr std::size_t kFecDataHeader = 8;

// --forge-chunks LIST: the chunk types, in order.
std::vector<std::uint8_t> chunk_list(const std::string& key, const std::string& v) {
  std::vector<std::uint8_t> out;
  std::size_t start = 0;
  while (start <= v.size()) {
    std::size_t comma = v.find(',', start);
    std::string name =
        v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (name == "abort")
      out.push_back(kAbort);
    else if (name == "shutdown")
      out.push_back(kShutdown);
    else if (name == "init")
      out.push_back(kInit);
    else
      usage(key + ": '" + name + "' is none of abort, shutdown, init");
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (out.size() > 16) usage(key + ": at most 16 chunks");
  return out;
}

struct Args {
  std::string pcap;
  std::optional<Addr> src, dst;
  std::optional<Endpoint> rewrite_src;
  unsigned long udp_port = 0, rate = 5000, timeout = 30, reflect = 0, reflect_max = 200;
  std::string tap;
  std::vector<std::uint8_t> forge;
  bool dry_run = false;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (k == "-h" || k == "--help") usage();
    if (k == "--dry-run") {
      a.dry_run = true;
      continue;
    }
    if (i + 1 >= argc) usage("missing value for " + k);
    std::string v = argv[++i];
    if (k == "--pcap")
      a.pcap = v;
    else if (k == "--src")
      a.src = address(k, v);
    else if (k == "--dst")
      a.dst = address(k, v);
    else if (k == "--udp-port")
      a.udp_port = number(k, v, 1, 65535);
    else if (k == "--rewrite-src")
      a.rewrite_src = endpoint(k, v);
    else if (k == "--rate")
      a.rate = number(k, v, 0, 10000000);
    else if (k == "--timeout")
      a.timeout = number(k, v, 1, 3600);
    else if (k == "--reflect")
      a.reflect = number(k, v, 1, 60);
    else if (k == "--reflect-max")
      a.reflect_max = number(k, v, 1, 100000);
    else if (k == "--tap")
      a.tap = v;
    else if (k == "--forge-chunks")
      a.forge = chunk_list(k, v);
    else
      usage("unknown option " + k);
  }
  if (a.pcap.empty()) usage("--pcap is required");
  if ((a.reflect || !a.forge.empty()) && !a.rewrite_src)
    usage("--reflect and --forge-chunks need --rewrite-src (the address and port to answer from)");
  if (!a.tap.empty() && !a.reflect) usage("--tap needs --reflect");
  return a;
}

using base::load_be16;
using base::load_be32;
using base::store_be16;
using base::store_be32;

// The checksum over the UDP pseudo-header and the ulen bytes of UDP header and payload at
// ip + ihl, as they stand (0 when the stored checksum is right). version: of the IP header at ip.
std::uint16_t udp_sum(std::uint8_t version, const std::uint8_t* ip, std::size_t ihl,
                      std::size_t ulen) {
  std::uint32_t pseudo = version == 4 ? base::checksum::add({ip + 12, 8})  // addresses,
                                      : base::checksum::add({ip + 8, 32});
  pseudo += 17 + static_cast<std::uint32_t>(ulen);  // protocol, UDP length
  return base::checksum::internet({ip + ihl, ulen}, pseudo);
}

// The socket address of addr and port (network byte order in, host order port).
socklen_t sockaddr_of(const Addr& addr, std::uint16_t port, sockaddr_storage& out) {
  out = {};
  if (addr.version == 4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    std::memcpy(&sin->sin_addr, addr.bytes, 4);
    return sizeof(sockaddr_in);
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  std::memcpy(&sin6->sin6_addr, addr.bytes, 16);
  return sizeof(sockaddr_in6);
}

// ---- classic pcap ----------------------------------------------------------------------------

struct Record {
  std::vector<std::uint8_t> data;
  std::uint32_t orig_len;
};

std::vector<Record> read_pcap(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open " + path + ": " + std::strerror(errno));
  std::vector<std::uint8_t> file((std::istreambuf_iterator<char>(f)),
                                 std::istreambuf_iterator<char>());
  if (file.size() < 24) throw Error(path + ": too short for a pcap file header");
  std::uint32_t magic_le = std::uint32_t{file[0]} | std::uint32_t{file[1]} << 8 |
                           std::uint32_t{file[2]} << 16 | std::uint32_t{file[3]} << 24;
  bool swapped;  // false: the file's integers are little-endian
  if (magic_le == 0xa1b2c3d4u || magic_le == 0xa1b23c4du)
    swapped = false;
  else if (magic_le == 0xd4c3b2a1u || magic_le == 0x4d3cb2a1u)
    swapped = true;
  else if (magic_le == 0x0a0d0d0au)
    throw Error(path + ": pcapng is not supported (write classic pcap: tcpdump -w)");
  else
    throw Error(path + ": not a pcap file (magic 0x" + [&] {
      char b[9];
      std::snprintf(b, sizeof b, "%08x", magic_le);
      return std::string(b);
    }() + ")");
  auto u32 = [&](std::size_t off) {
    const std::uint8_t* p = file.data() + off;
    return swapped ? load_be32(p)
                   : std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
                         std::uint32_t{p[3]} << 24;
  };
  std::uint32_t linktype = u32(20) & 0x0fffffff;  // the top bits may carry FCS information
  if (linktype != 1)
    throw Error(path + ": link type " + std::to_string(linktype) +
                " is not supported (only EN10MB = 1: capture on an Ethernet/veth interface)");
  std::vector<Record> out;
  std::size_t off = 24;
  while (off < file.size()) {
    if (file.size() - off < 16)
      throw Error(path + ": truncated record header at offset " + std::to_string(off));
    std::uint32_t incl = u32(off + 8), orig = u32(off + 12);
    off += 16;
    if (incl > 262144 || incl > file.size() - off)
      throw Error(path + ": record of " + std::to_string(incl) + " bytes at offset " +
                  std::to_string(off - 16) + " runs past the end of the file");
    out.push_back({std::vector<std::uint8_t>(file.begin() + static_cast<long>(off),
                                             file.begin() + static_cast<long>(off + incl)),
                   orig});
    off += incl;
  }
  return out;
}

// ---- replay ----------------------------------------------------------------------------------

// SCTP DATA (0) and I-DATA (64) chunks in an SCTP packet (the UDP payload); 0 if it is none.
unsigned long count_data_chunks(const std::uint8_t* p, std::size_t n) {
  if (n < 12) return 0;
  unsigned long chunks = 0;
  for (std::size_t off = 12; off + 4 <= n;) {
    std::uint8_t type = p[off];
    std::size_t len = load_be16(p + off + 2);
    if (len < 4 || len > n - off) break;
    if (type == 0 || type == 64) ++chunks;
    off += (len + 3) & ~std::size_t{3};
  }
  return chunks;
}

int run(const Args& a) {
  std::vector<Record> records = read_pcap(a.pcap);
  unsigned long ipv4_count = 0, ipv6_count = 0, selected = 0, replayed = 0, data_chunks = 0,
                truncated = 0, bad_ip = 0, bad_udp = 0, other = 0, rewritten = 0;
  unsigned long long bytes = 0;
  struct Packet {
    const std::uint8_t* ip;
    std::size_t len;
    Addr dst;
    std::size_t ihl;
    bool udp;
  };
  std::vector<Packet> todo;
  for (Record& r : records) {
    std::uint8_t* p = r.data.data();
    std::size_t n = r.data.size(), l2 = 14;
    if (n < 14) {
      ++other;
      continue;
    }
    std::uint16_t ethertype = load_be16(p + 12);
    while ((ethertype == 0x8100 || ethertype == 0x88a8) && n >= l2 + 4) {
      ethertype = load_be16(p + l2 + 2);
      l2 += 4;
    }
    std::uint8_t version = n > l2 ? p[l2] >> 4 : 0;
    bool v4 = ethertype == 0x0800 && n >= l2 + 20 && version == 4;
    bool v6 = ethertype == 0x86dd && n >= l2 + 40 && version == 6;
    if (!v4 && !v6) {
      ++other;
      continue;
    }
    ++(v4 ? ipv4_count : ipv6_count);
    std::uint8_t* ip = p + l2;
    // ihl: the IP header's length; total: the packet's, by its header.
    std::size_t ihl = v4 ? std::size_t{ip[0] & 0x0fu} * 4 : 40;
    std::size_t total = v4 ? load_be16(ip + 2) : 40 + std::size_t{load_be16(ip + 4)};
    Addr src, dst;
    src.version = dst.version = version;
    std::memcpy(src.bytes, ip + (v4 ? 12 : 8), src.len());
    std::memcpy(dst.bytes, ip + (v4 ? 16 : 24), dst.len());
    bool frag = v4 && (load_be16(ip + 6) & 0x3fff) != 0;
    bool udp = ip[v4 ? 9 : 6] == 17 && !frag && total >= ihl + 8;
    std::size_t sport = 0, dport = 0;
    if (udp && n - l2 >= ihl + 8) {
      sport = load_be16(ip + ihl);
      dport = load_be16(ip + ihl + 2);
    }
    if ((a.src && !a.src->matches(version, src.bytes)) ||
        (a.dst && !a.dst->matches(version, dst.bytes)) ||
        (a.udp_port && !(udp && (sport == a.udp_port || dport == a.udp_port))) ||
        (a.rewrite_src && a.rewrite_src->addr.version != version)) {
      ++other;
      continue;
    }
    ++selected;
    if (ihl < 20 || total < ihl || total > n - l2 || l2 + total > r.orig_len) {
      ++truncated;  // cut by the snap length (or nonsense): cannot be replayed byte-exact
      continue;
    }
    if (v4 && base::checksum::internet({ip, ihl}) != 0) ++bad_ip;
    if (udp) {
      if ((v6 || load_be16(ip + ihl + 6) != 0) && udp_sum(version, ip, ihl, total - ihl) != 0)
        ++bad_udp;
      data_chunks += count_data_chunks(ip + ihl + 8, total - ihl - 8);
    }
    if (a.rewrite_src && v6) {
      const Endpoint& e = *a.rewrite_src;
      std::memcpy(ip + 8, e.addr.bytes, 16);
      if (udp) {
        store_be16(ip + ihl, e.port);
        store_be16(ip + ihl + 6, 0);
        std::uint16_t c = udp_sum(version, ip, ihl, total - ihl);
        store_be16(ip + ihl + 6, c ? c : 0xffff);
      }
      ++rewritten;
    } else if (a.rewrite_src) {
      const Endpoint& e = *a.rewrite_src;
      std::uint32_t addr = load_be32(e.addr.bytes);
      bool first_udp_fragment =
          frag && ip[9] == 17 && (load_be16(ip + 6) & 0x1fff) == 0 && total >= ihl + 8;
      if (first_udp_fragment && load_be16(ip + ihl + 6) != 0) {
        // RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), for the address's two words and the port.
        std::uint32_t acc = static_cast<std::uint16_t>(~load_be16(ip + ihl + 6));
        for (std::size_t off : {std::size_t{12}, std::size_t{14}})
          acc += static_cast<std::uint16_t>(~load_be16(ip + off));
        acc += static_cast<std::uint16_t>(~load_be16(ip + ihl));
        acc += (addr >> 16) + (addr & 0xffff) + e.port;
        std::uint16_t c = base::checksum::internet({}, acc);  // folded, complemented
        store_be16(ip + ihl + 6, c ? c : 0xffff);
      }
      store_be32(ip + 12, addr);
      if (udp || first_udp_fragment) store_be16(ip + ihl, e.port);
      if (udp && load_be16(ip + ihl + 6) != 0) {
        store_be16(ip + ihl + 6, 0);
        std::uint16_t c = udp_sum(version, ip, ihl, total - ihl);
        store_be16(ip + ihl + 6, c ? c : 0xffff);  // a computed 0 is sent as 0xffff (RFC 768)
      }
      store_be16(ip + 10, 0);
      store_be16(ip + 10, base::checksum::internet({ip, ihl}));
      ++rewritten;
    }
    todo.push_back({ip, total, dst, ihl, udp});
  }

  // The attacker's own UDP socket (--reflect, --forge-chunks), bound before anything goes out.
  int us = -1, tap = -1;
  unsigned long reflected = 0, tapped = 0, forged = 0;
  if ((a.reflect || !a.forge.empty()) && !a.dry_run) {
    const Endpoint& e = *a.rewrite_src;
    us = ::socket(e.addr.version == 4 ? AF_INET : AF_INET6,
                  SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (us < 0) throw Error(std::string("socket(SOCK_DGRAM): ") + std::strerror(errno));
    sockaddr_storage self{};
    socklen_t self_len = sockaddr_of(e.addr, e.port, self);
    if (::bind(us, reinterpret_cast<sockaddr*>(&self), self_len) != 0)
      throw Error("bind to the --rewrite-src endpoint: " + std::string(std::strerror(errno)));
  }
  if (!a.tap.empty() && !a.dry_run) {
    unsigned index = ::if_nametoindex(a.tap.c_str());
    if (index == 0) throw Error("--tap " + a.tap + ": " + std::strerror(errno));
    tap = ::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL));
    if (tap < 0) throw Error(std::string("socket(AF_PACKET): ") + std::strerror(errno));
    sockaddr_ll ll{};
    ll.sll_family = AF_PACKET;
    ll.sll_protocol = htons(ETH_P_ALL);
    ll.sll_ifindex = static_cast<int>(index);
    if (::bind(tap, reinterpret_cast<sockaddr*>(&ll), sizeof ll) != 0)
      throw Error("bind to --tap " + a.tap + ": " + std::strerror(errno));
  }
  // Answers what arrived (--reflect, --tap) until `until` or until --reflect-max is spent.
  auto serve = [&](Clock::time_point until) {
    std::uint8_t buf[65536];
    while (reflected + tapped < a.reflect_max) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now());
      pollfd fds[2] = {{us, POLLIN, 0}, {tap, POLLIN, 0}};
      int n = ::poll(fds, tap >= 0 ? 2 : 1, static_cast<int>(std::max<long long>(0, left.count())));
      if (n < 0 && errno != EINTR) throw Error(std::string("poll: ") + std::strerror(errno));
      if (n <= 0 && Clock::now() >= until) return;
      for (;;) {  // our socket: back to the sender
        if (reflected + tapped >= a.reflect_max) return;
        sockaddr_storage from{};
        socklen_t from_len = sizeof from;
        ssize_t r =
            ::recvfrom(us, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
        if (r < 0) break;
        if (::sendto(us, buf, static_cast<std::size_t>(r), 0, reinterpret_cast<sockaddr*>(&from),
                     from_len) == r)
          ++reflected;
      }
      while (tap >= 0) {  // datagrams between others: their payload, from us, to their sender
        if (reflected + tapped >= a.reflect_max) return;
        sockaddr_ll ll{};
        socklen_t ll_len = sizeof ll;
        ssize_t r = ::recvfrom(tap, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&ll), &ll_len);
        if (r < 0) break;
        std::size_t len = static_cast<std::size_t>(r);
        if (ll.sll_pkttype != PACKET_OTHERHOST || len < 1) continue;
        std::uint8_t version = buf[0] >> 4;
        if (version != a.rewrite_src->addr.version) continue;
        std::size_t ihl = version == 4 ? std::size_t{buf[0] & 0x0fu} * 4 : 40;
        if (ihl < 20 || len < ihl + 8) continue;
        bool udp = version == 4 ? buf[9] == 17 && (load_be16(buf + 6) & 0x3fff) == 0 : buf[6] == 17;
        std::size_t total =
            version == 4 ? load_be16(buf + 2) : 40 + std::size_t{load_be16(buf + 4)};
        std::size_t ulen = load_be16(buf + ihl + 4);
        if (!udp || total > len || ulen < 8 || ulen > total - ihl) continue;
        std::uint16_t sport = load_be16(buf + ihl), dport = load_be16(buf + ihl + 2);
        if (a.udp_port && sport != a.udp_port && dport != a.udp_port) continue;
        Addr src;
        src.version = version;
        std::memcpy(src.bytes, buf + (version == 4 ? 12 : 8), src.len());
        sockaddr_storage to{};
        socklen_t to_len = sockaddr_of(src, sport, to);
        if (::sendto(us, buf + ihl + 8, ulen - 8, 0, reinterpret_cast<sockaddr*>(&to), to_len) ==
            static_cast<ssize_t>(ulen - 8))
          ++tapped;
      }
    }
  };

  // One raw socket per family, opened when a packet of it is to be sent (IPPROTO_RAW implies
  // IP_HDRINCL / IPV6_HDRINCL).
  int fd4 = -1, fd6 = -1;
  auto socket_for = [&](std::uint8_t version) {
    int& fd = version == 4 ? fd4 : fd6;
    if (fd < 0) {
      int family = version == 4 ? AF_INET : AF_INET6;
      fd = ::socket(family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
      if (fd < 0)
        throw Error(std::string("socket(") + (version == 4 ? "AF_INET" : "AF_INET6") +
                    ", SOCK_RAW, IPPROTO_RAW): " + std::strerror(errno));
    }
    return fd;
  };
  auto start = Clock::now();
  auto deadline = start + std::chrono::seconds(a.timeout);
  bool failed = false;
  if (!a.forge.empty()) {
    // The first selected datagram carrying SCTP: its ports and verification tag.
    const Packet* model = nullptr;
    const std::uint8_t* model_sctp = nullptr;
    for (const Packet& p : todo) {
      if (!p.udp) continue;
      const std::uint8_t* sctp = p.ip + p.ihl + 8;
      std::size_t n = p.len - p.ihl - 8;
      if (n >= kFecDataHeader && load_be16(sctp) == 0 && sctp[2] == 0x46 &&
          (sctp[3] == 1 || sctp[3] == 4)) {
        sctp += kFecDataHeader;  // an FEC data datagram: the SCTP packet follows its header
        n -= kFecDataHeader;
      }
      if (n < 16 || load_be16(sctp) == 0 || load_be16(sctp + 2) == 0) continue;
      std::vector<std::uint8_t> copy(sctp, sctp + n);
      tool::set_sctp_checksum(copy);
      if (std::memcmp(copy.data() + 8, sctp + 8, 4) == 0) {
        model = &p;
        model_sctp = sctp;
        break;
      }
    }
    if (!model) throw Error("--forge-chunks: no SCTP packet among the selected ones");
    std::mt19937 rng(std::random_device{}());
    sockaddr_storage to{};
    socklen_t to_len = sockaddr_of(model->dst, load_be16(model->ip + model->ihl + 2), to);
    for (std::uint8_t type : a.forge) {
      std::vector<std::uint8_t> pkt(model_sctp, model_sctp + 8);
      std::uint8_t chunk[20] = {type, 0, 0, 0};
      std::size_t chunk_len = type == kAbort ? 4 : type == kShutdown ? 8 : 20;
      store_be16(chunk + 2, static_cast<std::uint16_t>(chunk_len));
      if (type == kInit) {
        store_be32(chunk + 4, rng() | 1);  // initiate tag (non-zero)
        store_be32(chunk + 8, 65536);      // a_rwnd
        store_be16(chunk + 12, 10);        // outbound streams
        store_be16(chunk + 14, 10);        // inbound streams
        store_be32(chunk + 16, rng());     // initial TSN
      }
      pkt.resize(12);
      pkt.insert(pkt.end(), chunk, chunk + chunk_len);
      tool::set_sctp_checksum(pkt);
      if (a.dry_run) {
        ++forged;
        continue;
      }
      if (::sendto(us, pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&to), to_len) !=
          static_cast<ssize_t>(pkt.size())) {
        std::fprintf(stderr, "replay: sendto (forged chunk %u): %s\n", unsigned{type},
                     std::strerror(errno));
        failed = true;
        break;
      }
      ++forged;
    }
  }
  for (std::size_t i = 0; a.forge.empty() && i < todo.size() && !failed; ++i) {
    if (Clock::now() >= deadline) {
      std::fprintf(stderr, "replay: timed out after %lu s\n", a.timeout);
      failed = true;
      break;
    }
    if (a.rate > 0) {
      auto due = start + std::chrono::nanoseconds(i * 1000000000ULL / a.rate);
      if (us >= 0 && a.reflect)
        serve(due);
      else if (due > Clock::now())
        std::this_thread::sleep_until(due);
    } else if (us >= 0 && a.reflect) {
      serve(Clock::now());
    }
    if (a.dry_run) {
      ++replayed;
      bytes += todo[i].len;
      continue;
    }
    sockaddr_storage to{};
    socklen_t to_len = sockaddr_of(todo[i].dst, 0, to);
    int fd = socket_for(todo[i].dst.version);
    for (int attempt = 0;; ++attempt) {
      ssize_t r =
          ::sendto(fd, todo[i].ip, todo[i].len, 0, reinterpret_cast<sockaddr*>(&to), to_len);
      if (r == static_cast<ssize_t>(todo[i].len)) {
        ++replayed;
        bytes += todo[i].len;
        break;
      }
      if (r < 0 && (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) && attempt < 100) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      std::fprintf(stderr, "replay: sendto (packet %zu, %zu bytes): %s\n", i + 1, todo[i].len,
                   r < 0 ? std::strerror(errno) : "short send");
      failed = true;
      break;
    }
  }
  if (us >= 0 && a.reflect) serve(Clock::now() + std::chrono::seconds(a.reflect));
  for (int fd : {fd4, fd6, us, tap})
    if (fd >= 0) ::close(fd);
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "replay: records=%zu ipv4=%lu ipv6=%lu selected=%lu replayed=%lu rewritten=%lu "
      "data_chunks=%lu bytes=%llu truncated=%lu bad_ip_checksum=%lu bad_udp_checksum=%lu "
      "other=%lu reflected=%lu tapped=%lu forged=%lu secs=%.2f%s\n",
      records.size(), ipv4_count, ipv6_count, selected, replayed, rewritten, data_chunks, bytes,
      truncated, bad_ip, bad_udp, other, reflected, tapped, forged, secs,
      a.dry_run ? " (dry run)" : "");
  if (selected == 0) {
    std::fprintf(stderr, "replay: no packet in %s matched\n", a.pcap.c_str());
    return 1;
  }
  if (!a.forge.empty()) return failed || forged != a.forge.size() ? 1 : 0;
  return failed || replayed != todo.size() ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  tool::name = "replay";
  tool::usage_text = kUsage;
  Args a = parse(argc, argv);
  return tool::run_main([&] { return run(a); });
}
