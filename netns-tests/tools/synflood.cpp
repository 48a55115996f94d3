// synflood: sends a bounded flood of TCP SYNs over IPv4, each one a new 5-tuple (a flood of new
// flows from inside a site, as a scanner or a misbehaving host would make).
//
//   synflood --from ADDR --to ADDR [--count N] [--rate PPS] [--dport FIRST-LAST] [--sport P]
//            [--seed X] [--timeout S]
//
// Sends N (default 200000) SYNs from --from to --to through socket(AF_INET, SOCK_RAW,
// IPPROTO_RAW) (IP_HDRINCL: the tool writes the whole IPv4 header, so --from may be any address,
// owned by the host or not; root or CAP_NET_RAW needed; the route to --to picks the interface). SYN
// number i (0-based) goes to destination port FIRST + i % (LAST - FIRST + 1) (--dport, default
// 1-65535) from source port P + i / (LAST - FIRST + 1) (--sport, default 20000): destination ports
// first, then the next source port, so all N 5-tuples are distinct (the options are refused if the
// source ports would run past 65535). Each SYN is 44 bytes: an IPv4 header (DF, TTL 64, id i mod
// 65536) and a TCP header with an MSS option (1460), window 64240 and a pseudo-random initial
// sequence number (from --seed, default 1); both the IPv4 header checksum and the TCP checksum
// (over the pseudo-header) are computed here and correct.
//
// --rate PPS paces the sends (default 20000; 0: as fast as possible). A send that fails with
// ENOBUFS / EAGAIN is retried for up to 20 ms. --timeout S (default 30) bounds the run; SYNs not
// sent by then count as failed. Prints one summary line on stdout:
//   synflood: sent=<n> failed=<n> secs=<s> pps=<n> first_sport=<p> last_sport=<p>
// (last_sport: the source port of the last SYN sent).
// Exit status: 0 if all N SYNs were sent, 1 otherwise (send errors, timeout), 2 on bad usage.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include "src/base/bytes.hpp"
#include "src/base/checksum.hpp"
#include "tool_cli.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kIpLen = 20, kTcpLen = 24, kPacketLen = kIpLen + kTcpLen;

using tool::Error;
using tool::number;
using tool::usage;

constexpr const char* kUsage =
    "usage: synflood --from ADDR --to ADDR [--count N] [--rate PPS] [--dport FIRST-LAST]\n"
    "                [--sport P] [--seed X] [--timeout S]\n";

struct Args {
  in_addr from{}, to{};
  bool from_set = false, to_set = false;
  unsigned long long count = 200000, rate = 20000, dport_first = 1, dport_last = 65535,
                     sport = 20000, seed = 1, timeout = 30;
};

in_addr address(const std::string& key, const std::string& v) {
  in_addr a{};
  if (::inet_pton(AF_INET, v.c_str(), &a) != 1)
    usage(key + " must be an IPv4 address, not '" + v + "'");
  return a;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; i += 2) {
    std::string k = argv[i];
    if (k == "-h" || k == "--help") usage();
    if (i + 1 >= argc) usage("missing value for " + k);
    std::string v = argv[i + 1];
    if (k == "--from") {
      a.from = address(k, v);
      a.from_set = true;
    } else if (k == "--to") {
      a.to = address(k, v);
      a.to_set = true;
    } else if (k == "--count") {
      a.count = number(k, v, 1, 100000000);
    } else if (k == "--rate") {
      a.rate = number(k, v, 0, 10000000);
    } else if (k == "--dport") {
      std::size_t dash = v.find('-');
      if (dash == std::string::npos) usage("--dport must be FIRST-LAST, not '" + v + "'");
      a.dport_first = number(k, v.substr(0, dash), 1, 65535);
      a.dport_last = number(k, v.substr(dash + 1), a.dport_first, 65535);
    } else if (k == "--sport") {
      a.sport = number(k, v, 1, 65535);
    } else if (k == "--seed") {
      a.seed = number(k, v, 0, ~0ULL);
    } else if (k == "--timeout") {
      a.timeout = number(k, v, 1, 3600);
    } else {
      usage("unknown option " + k);
    }
  }
  if (!a.from_set || !a.to_set) usage("--from and --to are required");
  unsigned long long span = a.dport_last - a.dport_first + 1;
  if (a.sport + (a.count - 1) / span > 65535)
    usage("--count " + std::to_string(a.count) + " SYNs over " + std::to_string(span) +
          " destination ports would need source ports beyond 65535 (lower --sport)");
  return a;
}

using base::store_be16;
using base::store_be32;

std::uint64_t mix(std::uint64_t x) {  // splitmix64 finaliser: the initial sequence numbers
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// SYN number i of the flood into pkt (kPacketLen bytes).
void make_syn(const Args& a, unsigned long long i, std::uint8_t* pkt) {
  unsigned long long span = a.dport_last - a.dport_first + 1;
  unsigned dport = static_cast<unsigned>(a.dport_first + i % span);
  unsigned sport = static_cast<unsigned>(a.sport + i / span);
  std::memset(pkt, 0, kPacketLen);
  std::uint8_t* ip = pkt;
  ip[0] = 0x45;  // version 4, header length 5 words
  store_be16(ip + 2, kPacketLen);
  store_be16(ip + 4, static_cast<unsigned>(i & 0xffff));
  store_be16(ip + 6, 0x4000);  // DF
  ip[8] = 64;
  ip[9] = IPPROTO_TCP;
  std::memcpy(ip + 12, &a.from, 4);  // in_addr is in network byte order already
  std::memcpy(ip + 16, &a.to, 4);
  store_be16(ip + 10, base::checksum::internet({ip, kIpLen}));

  std::uint8_t* tcp = pkt + kIpLen;
  store_be16(tcp, sport);
  store_be16(tcp + 2, dport);
  store_be32(tcp + 4, static_cast<std::uint32_t>(mix(a.seed ^ (i << 1))));
  tcp[12] = (kTcpLen / 4) << 4;  // data offset
  tcp[13] = 0x02;                // SYN
  store_be16(tcp + 14, 64240);   // window
  tcp[20] = 2;                   // MSS option: kind 2, length 4, 1460
  tcp[21] = 4;
  store_be16(tcp + 22, 1460);
  std::uint8_t pseudo[12];
  std::memcpy(pseudo, ip + 12, 8);
  pseudo[8] = 0;
  pseudo[9] = IPPROTO_TCP;
  store_be16(pseudo + 10, kTcpLen);
  store_be16(tcp + 16, base::checksum::internet({tcp, kTcpLen}, base::checksum::add(pseudo)));
}

int run(const Args& a) {
  int fd = ::socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (fd < 0)
    throw Error(std::string("socket(AF_INET, SOCK_RAW, IPPROTO_RAW): ") + std::strerror(errno));
  int one = 1;
  if (::setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof one) < 0) {
    int err = errno;
    ::close(fd);
    throw Error(std::string("setsockopt IP_HDRINCL: ") + std::strerror(err));
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr = a.to;

  unsigned long long span = a.dport_last - a.dport_first + 1, sent = 0, failed = 0, last_sent = 0;
  std::uint8_t pkt[kPacketLen];
  tool::Pacer pacer(a.rate, a.timeout);
  auto start = pacer.start();
  for (unsigned long long i = 0; i < a.count; ++i) {
    if (!pacer.wait(i)) break;
    make_syn(a, i, pkt);
    bool ok = false;
    auto give_up = Clock::now() + std::chrono::milliseconds(20);
    for (;;) {
      ssize_t r =
          ::sendto(fd, pkt, kPacketLen, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
      if (r == static_cast<ssize_t>(kPacketLen)) {
        ok = true;
        break;
      }
      bool transient = r < 0 && (errno == ENOBUFS || errno == EAGAIN || errno == EINTR);
      if (!transient || Clock::now() >= give_up) {
        if (failed++ == 0)
          std::fprintf(stderr, "synflood: sendto (SYN %llu): %s\n", i,
                       r < 0 ? std::strerror(errno) : "short send");
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (ok) {
      ++sent;
      last_sent = i;
    }
  }
  ::close(fd);
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  failed = a.count - sent;  // the ones never tried (timeout) count as failed too
  std::printf(
      "synflood: sent=%llu failed=%llu secs=%.2f pps=%.0f first_sport=%llu last_sport=%llu\n", sent,
      failed, secs, secs > 0 ? static_cast<double>(sent) / secs : 0.0, a.sport,
      a.sport + last_sent / span);
  if (pacer.timed_out()) std::fprintf(stderr, "synflood: timed out after %llu s\n", a.timeout);
  return sent == a.count ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  tool::name = "synflood";
  tool::usage_text = kUsage;
  Args a = parse(argc, argv);
  return tool::run_main([&] { return run(a); });
}
