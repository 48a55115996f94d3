// spray: sends hostile UDP datagrams at a gateway's tunnel port (a fuzzing flood from the WAN).
//
//   spray --to ADDR [--port P] [--bind ADDR] [--sport P] [--count N] [--rate PPS]
//         [--sctp-port P] [--pool N] [--seed X] [--timeout S] [--payload HEX]
//
// Sends N (default 20000) datagrams to ADDR:P (default port 9899) from --bind:--sport (default:
// the kernel's choice; bind a foreign-looking address and port 9899 to pose as a peer). Each is
// one of these kinds, chosen at random:
//   random        random bytes, random length 0..1500
//   bad_crc       an SCTP packet (random chunks) whose CRC32c is wrong
//   sctp_chunks   an SCTP packet with a VALID CRC32c, a random verification tag, 1..4 random chunks
//   init          an SCTP INIT (verification tag 0), valid CRC32c
//   abort         an SCTP ABORT (T bit random) with a random verification tag, valid CRC32c
//   data          1..3 SCTP DATA chunks with random TSNs, stream ids, SSNs, payloads; random
//                 verification tag, valid CRC32c
//   short         0..11 bytes: shorter than the SCTP common header
//   cut           an INIT or DATA packet cut inside its chunk, CRC32c valid for what is left
//   probe         24 bytes shaped like a path probe (SCTP ports 0, magic "STPB", kind 1/2/random)
//   probe_badlen  probe-shaped but not 24 bytes long
// The SCTP ports of the SCTP-shaped packets: mostly the same port on both sides from
// --sctp-port .. --sctp-port+--pool-1 (default 9899, 2: the gateway's associations, so the
// packets meet the SCTP stack's verification-tag check), sometimes mismatched, sometimes random.
// The checksum is the CRC32c (Castagnoli) of RFC 4960 appendix B over the packet with the field
// taken as zero, stored least significant byte first, as Linux and usrsctp do
// (sctp_checksum.hpp).
//
// --rate PPS paces the datagrams (0, the default: as fast as possible). --timeout S (default 30)
// bounds the run. Prints one summary line on stdout:
//   spray: sent=<n> failed=<n> secs=<s> random=<n> ... probe_badlen=<n> valid_crc=<n>
//          to_assoc=<n> expect_bad_crc=<n> expect_malformed=<n>
// valid_crc: SCTP-shaped datagrams with a valid checksum (they pass the checksum check);
// to_assoc: those of them with a non-zero tag and equal pool ports, whose first chunk is no INIT,
// COOKIE ECHO or SHUTDOWN COMPLETE (an association's vtag check refuses them); expect_bad_crc:
// datagrams of 12+ bytes with a wrong checksum; expect_malformed: datagrams below 12 bytes plus
// probe-shaped ones of a wrong length.
// --payload HEX sends that one datagram (hex digits, 1 to 65507 bytes) N times instead, each
// with one sendto(), so it arrives exactly as given (unlike a shell's printf to /dev/udp, which
// is line-buffered and splits a datagram after every 0x0a byte). Its summary line is
//   spray: sent=<n> failed=<n> secs=<s> payload=<bytes>
// Exit status: 0 if all N datagrams were sent, 1 otherwise
// (send errors, timeout), 2 on bad usage.

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "sctp_checksum.hpp"
#include "tool_cli.hpp"

namespace {

using Clock = std::chrono::steady_clock;

using tool::crc32c;
using tool::Error;
using tool::number;
using tool::set_sctp_checksum;
using tool::usage;

constexpr const char* kUsage =
    "usage: spray --to ADDR [--port P] [--bind ADDR] [--sport P] [--count N]\n"
    "             [--rate PPS] [--sctp-port P] [--pool N] [--seed X] [--timeout S]\n"
    "             [--payload HEX]\n";

struct Args {
  std::string to, bind;
  unsigned long long port = 9899, sport = 0, count = 20000, rate = 0, sctp_port = 9899, pool = 2,
                     timeout = 30;
  unsigned long long seed = 0;
  bool seed_set = false;
  std::vector<std::uint8_t> payload;  // --payload: this datagram, not random ones
};

// The bytes of --payload's hex digits; a usage error unless 1..65507 whole bytes of hex.
std::vector<std::uint8_t> hex_bytes(const std::string& key, const std::string& v) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::vector<std::uint8_t> out;
  if (v.empty() || v.size() % 2 != 0 || v.size() / 2 > 65507)
    usage(key + " must be 1 to 65507 bytes as an even number of hex digits");
  for (std::size_t i = 0; i < v.size(); i += 2) {
    int hi = digit(v[i]), lo = digit(v[i + 1]);
    if (hi < 0 || lo < 0) usage(key + " must be hex digits only, not '" + v + "'");
    out.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
  }
  return out;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; i += 2) {
    std::string k = argv[i];
    if (k == "-h" || k == "--help") usage();
    if (i + 1 >= argc) usage("missing value for " + k);
    std::string v = argv[i + 1];
    if (k == "--to")
      a.to = v;
    else if (k == "--bind")
      a.bind = v;
    else if (k == "--port")
      a.port = number(k, v, 1, 65535);
    else if (k == "--sport")
      a.sport = number(k, v, 0, 65535);
    else if (k == "--count")
      a.count = number(k, v, 1, 100000000);
    else if (k == "--rate")
      a.rate = number(k, v, 0, 10000000);
    else if (k == "--sctp-port")
      a.sctp_port = number(k, v, 1, 65535);
    else if (k == "--pool")
      a.pool = number(k, v, 1, 1000);
    else if (k == "--timeout")
      a.timeout = number(k, v, 1, 3600);
    else if (k == "--seed")
      a.seed = number(k, v, 0, ~0ULL), a.seed_set = true;
    else if (k == "--payload")
      a.payload = hex_bytes(k, v);
    else
      usage("unknown option " + k);
  }
  if (a.to.empty()) usage("--to is required");
  if (a.sctp_port + a.pool - 1 > 65535) usage("--sctp-port + --pool - 1 must be at most 65535");
  return a;
}

// ---- random packets ---------------------------------------------------------------------------

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : x_(seed ^ 0x9E3779B97F4A7C15ULL) {
    if (x_ == 0) x_ = 1;
  }
  std::uint64_t next() {
    x_ ^= x_ >> 12;
    x_ ^= x_ << 25;
    x_ ^= x_ >> 27;
    return x_ * 0x2545F4914F6CDD1DULL;
  }
  std::uint32_t u32() { return static_cast<std::uint32_t>(next() >> 32); }
  // Uniform enough in [lo, hi] for a fuzzer.
  std::size_t range(std::size_t lo, std::size_t hi) { return lo + next() % (hi - lo + 1); }
  bool chance(unsigned percent) { return next() % 100 < percent; }
  void fill(std::uint8_t* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>(next() >> 56);
  }

 private:
  std::uint64_t x_;
};

void put16(std::vector<std::uint8_t>& v, std::uint16_t x) {
  v.push_back(static_cast<std::uint8_t>(x >> 8));
  v.push_back(static_cast<std::uint8_t>(x));
}
void put32(std::vector<std::uint8_t>& v, std::uint32_t x) {
  put16(v, static_cast<std::uint16_t>(x >> 16));
  put16(v, static_cast<std::uint16_t>(x));
}

enum Kind {
  kRandom,
  kBadCrc,
  kSctpChunks,
  kInit,
  kAbort,
  kData,
  kShort,
  kCut,
  kProbe,
  kProbeBadLen,
  kKinds
};
const char* const kKindNames[kKinds] = {"random", "bad_crc",     "sctp_chunks", "init",
                                        "abort",  "data",        "short",       "cut",
                                        "probe",  "probe_badlen"};
// Weights in percent, in Kind order.
const unsigned kWeights[kKinds] = {20, 10, 15, 10, 10, 15, 5, 5, 7, 3};

class Generator {
 public:
  Generator(std::uint64_t seed, unsigned sctp_port, unsigned pool)
      : rng_(seed), sctp_port_(sctp_port), pool_(pool) {}

  Kind pick() {
    unsigned r = static_cast<unsigned>(rng_.next() % 100), acc = 0;
    for (int k = 0; k < kKinds; ++k) {
      acc += kWeights[k];
      if (r < acc) return static_cast<Kind>(k);
    }
    return kRandom;
  }

  // Builds one datagram of kind k into out. to_assoc: see the header comment.
  void make(Kind k, std::vector<std::uint8_t>& out, bool& to_assoc) {
    out.clear();
    to_assoc = false;
    switch (k) {
      case kRandom:
        out.resize(rng_.range(0, 1500));
        rng_.fill(out.data(), out.size());
        break;
      case kBadCrc: {
        bool ignored;
        sctp_header(out, rng_.u32() | 1, ignored);
        random_chunks(out);
        set_sctp_checksum(out);
        out[8 + rng_.range(0, 3)] ^= static_cast<std::uint8_t>(rng_.range(1, 255));
        break;
      }
      case kSctpChunks: {
        std::uint32_t vtag = rng_.u32() | 1;
        sctp_header(out, vtag, to_assoc);
        // An INIT, COOKIE ECHO or SHUTDOWN COMPLETE first is not (only) judged by the vtag.
        if (std::uint8_t first = random_chunks(out); first == 1 || first == 10 || first == 14)
          to_assoc = false;
        set_sctp_checksum(out);
        break;
      }
      case kInit: {
        bool ignored;
        sctp_header(out, 0, ignored);
        init_chunk(out);
        set_sctp_checksum(out);
        break;
      }
      case kAbort: {
        sctp_header(out, rng_.u32() | 1, to_assoc);
        std::size_t cause = rng_.chance(50) ? rng_.range(1, 40) : 0;
        out.push_back(6);                                                   // ABORT
        out.push_back(static_cast<std::uint8_t>(rng_.chance(50) ? 1 : 0));  // T bit
        put16(out, static_cast<std::uint16_t>(4 + (cause ? 4 + cause : 0)));
        if (cause) {
          put16(out, 12);  // "User-Initiated Abort"
          put16(out, static_cast<std::uint16_t>(4 + cause));
          std::size_t at = out.size();
          out.resize(at + cause);
          rng_.fill(out.data() + at, cause);
          pad(out);
        }
        set_sctp_checksum(out);
        break;
      }
      case kData: {
        sctp_header(out, rng_.u32() | 1, to_assoc);
        for (std::size_t n = rng_.range(1, 3); n > 0; --n) data_chunk(out, rng_.range(1, 400));
        set_sctp_checksum(out);
        break;
      }
      case kShort:
        out.resize(rng_.range(0, 11));
        rng_.fill(out.data(), out.size());
        break;
      case kCut: {
        bool ignored;
        if (rng_.chance(50)) {
          sctp_header(out, 0, ignored);
          init_chunk(out);
        } else {
          sctp_header(out, rng_.u32() | 1, ignored);
          data_chunk(out, rng_.range(16, 400));
        }
        out.resize(rng_.range(13, out.size() - 1));  // inside the (first) chunk
        set_sctp_checksum(out);
        break;
      }
      case kProbe:
      case kProbeBadLen: {
        std::size_t len = 24;
        if (k == kProbeBadLen) {
          do len = rng_.range(8, 64);
          while (len == 24);
        }
        out.resize(len);
        rng_.fill(out.data(), len);
        std::memcpy(out.data(), "\0\0\0\0STPB", 8);
        if (len > 8) {
          unsigned r = static_cast<unsigned>(rng_.range(0, 9));
          if (r < 5)
            out[8] = 1;  // probe: the gateway echoes a peer's, ignores a stranger's
          else if (r < 8)
            out[8] = 2;  // echo
        }
        break;
      }
      case kKinds:
        break;
    }
  }

 private:
  // Common header: ports (mostly an association's: the same pool port both sides), vtag,
  // checksum 0 for now.
  void sctp_header(std::vector<std::uint8_t>& out, std::uint32_t vtag, bool& to_assoc) {
    unsigned r = static_cast<unsigned>(rng_.range(0, 9)), src, dst;
    if (r < 7) {
      src = dst = sctp_port_ + static_cast<unsigned>(rng_.range(0, pool_ - 1));
      to_assoc = vtag != 0;
    } else if (r < 9) {
      dst = sctp_port_ + static_cast<unsigned>(rng_.range(0, pool_ - 1));
      do src = static_cast<unsigned>(rng_.range(1, 65535));
      while (src == dst);
      to_assoc = false;
    } else {
      src = static_cast<unsigned>(rng_.range(0, 65535));
      dst = static_cast<unsigned>(rng_.range(0, 65535));
      to_assoc = false;
    }
    put16(out, static_cast<std::uint16_t>(src));
    put16(out, static_cast<std::uint16_t>(dst));
    put32(out, vtag);
    put32(out, 0);
  }
  static void pad(std::vector<std::uint8_t>& out) {
    while (out.size() % 4) out.push_back(0);
  }
  // 1..4 chunks of random types (often real ones) and contents; returns the first one's type.
  std::uint8_t random_chunks(std::vector<std::uint8_t>& out) {
    static const std::uint8_t kTypes[] = {0,  1,  2,  3,  4,  5,   6,   7,   8,   9,   10,  11,
                                          12, 13, 14, 15, 64, 128, 129, 130, 132, 192, 193, 255};
    std::uint8_t first = 0;
    for (std::size_t n = rng_.range(1, 4), i = 0; i < n; ++i) {
      std::uint8_t type = rng_.chance(60) ? kTypes[rng_.range(0, sizeof kTypes - 1)]
                                          : static_cast<std::uint8_t>(rng_.range(0, 255));
      if (i == 0) first = type;
      std::size_t len = rng_.range(0, 64);
      out.push_back(type);
      out.push_back(static_cast<std::uint8_t>(rng_.range(0, 255)));
      // Mostly a consistent length; sometimes a lie.
      std::uint16_t field = rng_.chance(85) ? static_cast<std::uint16_t>(4 + len)
                                            : static_cast<std::uint16_t>(rng_.range(0, 65535));
      put16(out, field);
      std::size_t at = out.size();
      out.resize(at + len);
      rng_.fill(out.data() + at, len);
      pad(out);
    }
    return first;
  }
  void init_chunk(std::vector<std::uint8_t>& out) {
    out.push_back(1);  // INIT
    out.push_back(0);
    put16(out, 20);
    put32(out, rng_.u32() | 1);                                         // initiate tag
    put32(out, static_cast<std::uint32_t>(rng_.range(1500, 1 << 20)));  // a_rwnd
    put16(out, static_cast<std::uint16_t>(rng_.range(1, 65535)));       // outbound streams
    put16(out, static_cast<std::uint16_t>(rng_.range(1, 65535)));       // max inbound streams
    put32(out, rng_.u32());                                             // initial TSN
  }
  void data_chunk(std::vector<std::uint8_t>& out, std::size_t payload) {
    out.push_back(0);  // DATA
    out.push_back(static_cast<std::uint8_t>(rng_.chance(80) ? 0x03 : rng_.range(0, 15)));
    put16(out, static_cast<std::uint16_t>(16 + payload));
    put32(out, rng_.u32());                                        // TSN
    put16(out, static_cast<std::uint16_t>(rng_.range(0, 300)));    // stream id
    put16(out, static_cast<std::uint16_t>(rng_.range(0, 65535)));  // SSN
    put32(out, rng_.u32());                                        // PPID
    std::size_t at = out.size();
    out.resize(at + payload);
    rng_.fill(out.data() + at, payload);
    pad(out);
  }

  Rng rng_;
  unsigned sctp_port_, pool_;
};

sockaddr_storage resolve(const std::string& host, unsigned port, int family, socklen_t& len) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int e = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); e != 0)
    throw Error("address " + host + ": " + ::gai_strerror(e));
  sockaddr_storage ss{};
  std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
  len = res->ai_addrlen;
  ::freeaddrinfo(res);
  return ss;
}

int run(const Args& a) {
  // Known-answer check of the CRC (the value src/base/crc32c.hpp documents).
  const char* kat = "123456789";
  if (crc32c(reinterpret_cast<const std::uint8_t*>(kat), 9) != 0xE3069283u)
    throw Error("CRC32c self-test failed");

  socklen_t to_len = 0;
  sockaddr_storage to = resolve(a.to, static_cast<unsigned>(a.port), AF_UNSPEC, to_len);
  int fd = ::socket(to.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error(std::string("socket: ") + std::strerror(errno));
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (!a.bind.empty() || a.sport != 0) {
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    std::string b = a.bind.empty() ? (to.ss_family == AF_INET6 ? "::" : "0.0.0.0") : a.bind;
    socklen_t blen = 0;
    sockaddr_storage bs = resolve(b, static_cast<unsigned>(a.sport), to.ss_family, blen);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&bs), blen) < 0)
      throw Error("bind " + b + ":" + std::to_string(a.sport) + ": " + std::strerror(errno));
  }

  std::uint64_t seed = a.seed_set ? a.seed
                                  : static_cast<std::uint64_t>(::time(nullptr)) ^
                                        (static_cast<std::uint64_t>(::getpid()) << 20);
  Generator gen(seed, static_cast<unsigned>(a.sctp_port), static_cast<unsigned>(a.pool));
  unsigned long long per_kind[kKinds] = {}, sent = 0, failed = 0, valid_crc = 0, to_assoc = 0,
                     bad_crc = 0, malformed = 0;
  std::vector<std::uint8_t> pkt;
  pkt.reserve(2048);
  tool::Pacer pacer(a.rate, a.timeout);
  auto start = pacer.start();
  for (unsigned long long i = 0; i < a.count; ++i) {
    if (!pacer.wait(i)) break;
    Kind k = kRandom;
    bool assoc = false;
    if (a.payload.empty()) {
      k = gen.pick();
      gen.make(k, pkt, assoc);
    } else {
      pkt = a.payload;
    }
    bool ok = false;
    for (int attempt = 0; attempt < 3 && !ok; ++attempt) {
      ssize_t r = ::sendto(fd, pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&to), to_len);
      if (r == static_cast<ssize_t>(pkt.size())) {
        ok = true;
      } else if (r < 0 && (errno == ENOBUFS || errno == EAGAIN || errno == EINTR)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      } else {
        if (failed == 0)
          std::fprintf(stderr, "spray: sendto (%zu bytes): %s\n", pkt.size(),
                       r < 0 ? std::strerror(errno) : "short send");
        break;
      }
    }
    if (!ok) {
      ++failed;
      continue;
    }
    ++sent;
    if (!a.payload.empty()) continue;
    ++per_kind[k];
    switch (k) {
      case kSctpChunks:
      case kInit:
      case kAbort:
      case kData:
      case kCut:
        ++valid_crc;
        if (assoc) ++to_assoc;
        break;
      case kRandom:
        ++(pkt.size() < 12 ? malformed : bad_crc);
        break;
      case kBadCrc:
        ++bad_crc;
        break;
      case kShort:
      case kProbeBadLen:
        ++malformed;
        break;
      default:
        break;
    }
  }
  ::close(fd);
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("spray: sent=%llu failed=%llu secs=%.2f", sent, failed, secs);
  if (!a.payload.empty()) {
    std::printf(" payload=%zu\n", a.payload.size());
    if (pacer.timed_out()) std::fprintf(stderr, "spray: timed out after %llu s\n", a.timeout);
    return sent == a.count ? 0 : 1;
  }
  for (int k = 0; k < kKinds; ++k) std::printf(" %s=%llu", kKindNames[k], per_kind[k]);
  std::printf(" valid_crc=%llu to_assoc=%llu expect_bad_crc=%llu expect_malformed=%llu seed=%llu\n",
              valid_crc, to_assoc, bad_crc, malformed, static_cast<unsigned long long>(seed));
  if (pacer.timed_out()) std::fprintf(stderr, "spray: timed out after %llu s\n", a.timeout);
  return sent == a.count ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  tool::name = "spray";
  tool::usage_text = kUsage;
  Args a = parse(argc, argv);
  return tool::run_main([&] { return run(a); });
}
