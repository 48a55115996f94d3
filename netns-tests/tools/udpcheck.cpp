// udpcheck: full-size UDP datagrams that must not be fragmented, each one verified on arrival.
//
//   udpcheck recv --port P [--bind ADDR] [--count N] [--size B] [--idle-ms MS] [--timeout S]
//   udpcheck send --host H --port P [--count N] [--size B] [--rate PPS] [--timeout S]
//
// The sender connects a UDP socket to H:P with path-MTU discovery "do" (IP_MTU_DISCOVER =
// IP_PMTUDISC_DO, IPv6: IPV6_MTU_DISCOVER = IPV6_PMTUDISC_DO): the DF bit is set and the kernel
// never fragments; a datagram that does not fit the (learned) path MTU fails with EMSGSIZE, which
// ends the run with an error. It sends N (default 1000) datagrams of exactly B bytes of payload
// (default 1472: with the IPv4 and UDP headers, an IP packet of 1500 bytes; use 1452 for IPv6),
// paced at PPS datagrams per second (default 2000; 0: as fast as possible). Datagram i holds
//   "UCHK" | i (u64, big-endian) | B (u32, big-endian) | B-16 bytes of byte_stream.hpp's stream
//   of seed i
// so its content is a function of its sequence number. Prints one line on stdout:
//   "udpcheck send: sent=<n> wanted=<N> size=<B> ip_length=<B+28|B+48> path_mtu=<M>
//    elapsed_s=<s> status=<ok|error>"
// (path_mtu: the socket's IP_MTU / IPV6_MTU after the run). Exit status 0 only if all N were sent.
//
// The receiver binds ADDR:P (default "::", which takes IPv4 too) and checks every datagram: its
// length (the real one, MSG_TRUNC), magic, size field, sequence number (< N) and content. It stops
// once all N arrived intact (after a 200 ms linger that would catch late duplicates), after MS
// (default 3000) ms without a datagram once the first one came, or at the timeout. Prints:
//   "udpcheck recv: received=<n> intact=<n> bad=<n> duplicates=<n> missing=<n> reordered=<n>
//    wanted=<N> size=<B> first_missing=<i|-> elapsed_s=<s> status=<ok|error>"
// bad: wrong length or content (the first few are described on stderr); reordered: datagrams that
// arrived after one with a higher sequence number (informative). Exit status 0 only if all N
// arrived intact, none bad, none twice.
//
// Everything is bounded by --timeout S (default 30). Exit status 1 on failure, 2 on bad usage.

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "byte_stream.hpp"
#include "tool_cli.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using tool::Error;
using tool::number;
using tool::usage;

constexpr std::size_t kHeader = 16;  // magic, sequence number, size
constexpr std::size_t kMaxSize = 65507;
constexpr const char kMagic[4] = {'U', 'C', 'H', 'K'};

constexpr const char* kUsage =
    "usage: udpcheck recv --port P [--bind ADDR] [--count N] [--size B] [--idle-ms MS]\n"
    "                     [--timeout S]\n"
    "       udpcheck send --host H --port P [--count N] [--size B] [--rate PPS] [--timeout S]\n";

struct Args {
  std::string mode, host, bind = "::";
  unsigned long long port = 0, count = 1000, size = 1472, rate = 2000, idle_ms = 3000, timeout = 30;
};

Args parse(int argc, char** argv) {
  if (argc < 2) usage();
  Args a;
  a.mode = argv[1];
  if (a.mode != "send" && a.mode != "recv") usage("mode must be send or recv");
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (k == "-h" || k == "--help") usage();
    if (i + 1 >= argc) usage("missing value for " + k);
    std::string v = argv[++i];
    if (k == "--port")
      a.port = number(k, v, 1, 65535);
    else if (k == "--host" && a.mode == "send")
      a.host = v;
    else if (k == "--bind" && a.mode == "recv")
      a.bind = v;
    else if (k == "--count")
      a.count = number(k, v, 1, 10000000);
    else if (k == "--size")
      a.size = number(k, v, kHeader, kMaxSize);
    else if (k == "--rate" && a.mode == "send")
      a.rate = number(k, v, 0, 10000000);
    else if (k == "--idle-ms" && a.mode == "recv")
      a.idle_ms = number(k, v, 1, 3600000);
    else if (k == "--timeout")
      a.timeout = number(k, v, 1, 3600);
    else
      usage("unknown option " + k + " for mode " + a.mode);
  }
  if (a.port == 0) usage("--port is required");
  if (a.mode == "send" && a.host.empty()) usage("--host is required");
  return a;
}

std::string errno_text(const char* what, int err = errno) {
  return std::string(what) + ": " + std::strerror(err);
}

void put_be(std::uint8_t* p, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}
std::uint64_t get_be(const std::uint8_t* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = v << 8 | p[i];
  return v;
}

// Datagram seq of size bytes.
void make_datagram(std::vector<std::uint8_t>& buf, std::uint64_t seq, std::size_t size) {
  buf.resize(size);
  std::memcpy(buf.data(), kMagic, 4);
  put_be(buf.data() + 4, seq, 8);
  put_be(buf.data() + 12, size, 4);
  Stream(seq).fill(buf.data() + kHeader, size - kHeader);
}

addrinfo* resolve(const std::string& host, unsigned long long port, int flags) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | flags;
  addrinfo* res = nullptr;
  if (int e = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); e != 0)
    throw Error("address " + host + ": " + ::gai_strerror(e));
  return res;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {
    if (fd_ < 0) throw Error(errno_text("socket"));
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { ::close(fd_); }
  int get() const { return fd_; }

 private:
  int fd_;
};

double secs_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// ---- sender -----------------------------------------------------------------------------------

int path_mtu(int fd, int family) {
  int mtu = -1;
  socklen_t len = sizeof mtu;
  int rc = family == AF_INET6 ? ::getsockopt(fd, IPPROTO_IPV6, IPV6_MTU, &mtu, &len)
                              : ::getsockopt(fd, IPPROTO_IP, IP_MTU, &mtu, &len);
  return rc == 0 ? mtu : -1;
}

int run_send(const Args& a) {
  addrinfo* ai = resolve(a.host, a.port, 0);
  int family = ai->ai_family;
  Fd fd(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  int rc = 0, err = 0;
  if (family == AF_INET6) {
    int v = IPV6_PMTUDISC_DO;
    rc = ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_MTU_DISCOVER, &v, sizeof v);
  } else {
    int v = IP_PMTUDISC_DO;
    rc = ::setsockopt(fd.get(), IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof v);
  }
  if (rc != 0) {
    ::freeaddrinfo(ai);
    throw Error(errno_text("setsockopt MTU_DISCOVER = PMTUDISC_DO"));
  }
  int buf = 1 << 20;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  timeval tv{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  rc = ::connect(fd.get(), ai->ai_addr, ai->ai_addrlen);
  err = errno;
  ::freeaddrinfo(ai);
  if (rc != 0) throw Error(errno_text("connect", err));

  const std::size_t size = static_cast<std::size_t>(a.size);
  const std::size_t ip_length = size + 8 + (family == AF_INET6 ? 40 : 20);
  std::vector<std::uint8_t> dgram;
  tool::Pacer pacer(a.rate, a.timeout);
  unsigned long long sent = 0;
  std::string error;
  for (unsigned long long i = 0; i < a.count && error.empty(); ++i) {
    if (!pacer.wait(i)) {
      error = "timed out after " + std::to_string(a.timeout) + " s";
      break;
    }
    make_datagram(dgram, i, size);
    for (int attempt = 0;; ++attempt) {
      ssize_t r = ::send(fd.get(), dgram.data(), dgram.size(), 0);
      if (r == static_cast<ssize_t>(dgram.size())) {
        ++sent;
        break;
      }
      int e = errno;
      if (r >= 0) {
        error = "short send of datagram " + std::to_string(i);
      } else if ((e == ENOBUFS || e == EAGAIN || e == EINTR) && attempt < 1000) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      } else if (e == EMSGSIZE) {
        error = "datagram " + std::to_string(i) + " (" + std::to_string(size) +
                " bytes, IP length " + std::to_string(ip_length) +
                ") does not fit the path MTU, now " + std::to_string(path_mtu(fd.get(), family)) +
                " (EMSGSIZE; DF is set, so no fragmentation)";
      } else {
        error = "send of datagram " + std::to_string(i) + ": " + std::strerror(e);
      }
      break;
    }
  }
  bool ok = error.empty() && sent == a.count;
  std::printf(
      "udpcheck send: sent=%llu wanted=%llu size=%zu ip_length=%zu path_mtu=%d elapsed_s=%.3f "
      "status=%s\n",
      sent, a.count, size, ip_length, path_mtu(fd.get(), family), secs_since(pacer.start()),
      ok ? "ok" : "error");
  std::fflush(stdout);
  if (!error.empty()) throw Error(error);
  return ok ? 0 : 1;
}

// ---- receiver ---------------------------------------------------------------------------------

int run_recv(const Args& a) {
  addrinfo* ai = resolve(a.bind, a.port, AI_PASSIVE);
  Fd fd(::socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  int zero = 0, buf = 8 << 20;
  if (ai->ai_family == AF_INET6)
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);  // "::" takes IPv4 too
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  int rc = ::bind(fd.get(), ai->ai_addr, ai->ai_addrlen);
  int err = errno;
  ::freeaddrinfo(ai);
  if (rc != 0) throw Error(errno_text("bind", err));

  const std::size_t size = static_cast<std::size_t>(a.size);
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::seconds(a.timeout);
  const auto idle = std::chrono::milliseconds(a.idle_ms);
  const auto linger = std::chrono::milliseconds(200);
  std::vector<std::uint8_t> got(kMaxSize + 1), want;
  std::vector<bool> seen(a.count, false);
  unsigned long long received = 0, intact = 0, bad = 0, dups = 0, reordered = 0, max_seq = 0;
  bool any = false, timed_out = false;
  Clock::time_point last = start, complete{};
  auto note_bad = [&](const std::string& why) {
    if (++bad <= 5)
      std::fprintf(stderr, "udpcheck recv: bad datagram #%llu: %s\n", received, why.c_str());
  };
  for (;;) {
    auto now = Clock::now();
    Clock::time_point until = deadline;
    if (intact == a.count)
      until = std::min(until, complete + linger);
    else if (any)
      until = std::min(until, last + idle);
    if (now >= until) {
      timed_out = intact < a.count && now >= deadline;
      break;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count();
    pollfd p{fd.get(), POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::clamp<long long>(left, 1, 1000)));
    if (r < 0 && errno != EINTR) throw Error(errno_text("poll"));
    if (r <= 0) continue;
    for (;;) {
      ssize_t n = ::recv(fd.get(), got.data(), got.size(), MSG_TRUNC);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        throw Error(errno_text("recv"));
      }
      ++received;
      any = true;
      last = Clock::now();
      auto len = static_cast<std::size_t>(n);
      if (len != size) {
        note_bad(std::to_string(len) + " bytes, not " + std::to_string(size));
        continue;
      }
      std::uint64_t seq = get_be(got.data() + 4, 8);
      if (std::memcmp(got.data(), kMagic, 4) != 0 || get_be(got.data() + 12, 4) != size) {
        note_bad("bad header (magic or size field)");
        continue;
      }
      if (seq >= a.count) {
        note_bad("sequence number " + std::to_string(seq) + " out of range");
        continue;
      }
      make_datagram(want, seq, size);
      if (std::memcmp(got.data(), want.data(), size) != 0) {
        auto m = std::mismatch(got.begin(), got.begin() + static_cast<long>(size), want.begin());
        note_bad("datagram " + std::to_string(seq) + ": content differs from byte " +
                 std::to_string(m.first - got.begin()));
        continue;
      }
      if (seen[seq]) {
        ++dups;
        continue;
      }
      seen[seq] = true;
      if (intact > 0 && seq < max_seq) ++reordered;
      max_seq = std::max<unsigned long long>(max_seq, seq);
      if (++intact == a.count) complete = last;
    }
  }
  auto first_missing = std::find(seen.begin(), seen.end(), false);
  std::string fm = first_missing == seen.end() ? "-" : std::to_string(first_missing - seen.begin());
  bool ok = intact == a.count && bad == 0 && dups == 0;
  std::printf(
      "udpcheck recv: received=%llu intact=%llu bad=%llu duplicates=%llu missing=%llu "
      "reordered=%llu wanted=%llu size=%zu first_missing=%s elapsed_s=%.3f status=%s\n",
      received, intact, bad, dups, a.count - intact, reordered, a.count, size, fm.c_str(),
      secs_since(start), ok ? "ok" : "error");
  std::fflush(stdout);
  if (timed_out)
    std::fprintf(stderr, "udpcheck recv: timed out after %llu s\n", a.timeout);
  else if (!ok && any && intact < a.count)
    std::fprintf(stderr, "udpcheck recv: nothing arrived for %llu ms; gave up\n", a.idle_ms);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  tool::name = "udpcheck";
  tool::usage_text = kUsage;
  Args a = parse(argc, argv);
  return tool::run_main([&] { return a.mode == "send" ? run_send(a) : run_recv(a); });
}
