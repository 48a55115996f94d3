// gapmeter: a paced TCP stream whose receiver verifies every byte and measures the gaps in
// delivery (the longest time between two successive reads).
//
//   gapmeter recv --port P --bytes N [--bind ADDR] [--timeout S] [--report-ms G]
//   gapmeter send --host H --port P --bytes N [--rate BYTES_PER_S] [--timeout S]
//
// The sender sends N bytes of a pseudo-random stream (xorshift64*, fixed seed) at the given
// rate (default 10 MB/s), in 16 KiB writes, then half-closes and waits for the receiver to close.
// The receiver accepts one connection, checks every byte, and prints one line per gap of at
// least G ms (default 50) -- "gap <start, ms since the epoch> <length ms>" -- then a summary:
//   "received <bytes> exact <yes|no> max_gap_ms <ms> max_gap_at <epoch ms> reads <count>"
// Exit status 0 only if exactly N bytes arrived, all correct, and the connection ended cleanly
// (no reset) on both sides.

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "byte_stream.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double epoch_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "gapmeter: %s\n", what.c_str());
  std::exit(2);
}

struct Args {
  std::string mode, host, bind;
  int port = 0;
  std::uint64_t bytes = 0;
  double rate = 10e6, timeout = 60, report_ms = 50;
};

Args parse(int argc, char** argv) {
  if (argc < 2) die("usage: gapmeter recv|send --port P --bytes N ...");
  Args a;
  a.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) die("missing value for " + k);
    std::string v = argv[++i];
    if (k == "--port")
      a.port = std::atoi(v.c_str());
    else if (k == "--bytes")
      a.bytes = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--host")
      a.host = v;
    else if (k == "--bind")
      a.bind = v;
    else if (k == "--rate")
      a.rate = std::atof(v.c_str());
    else if (k == "--timeout")
      a.timeout = std::atof(v.c_str());
    else if (k == "--report-ms")
      a.report_ms = std::atof(v.c_str());
    else
      die("unknown option " + k);
  }
  if (a.port <= 0 || a.bytes == 0) die("--port and --bytes are required");
  return a;
}

addrinfo* resolve(const std::string& host, int port, bool passive) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  std::string p = std::to_string(port);
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), p.c_str(), &hints, &res);
  if (rc != 0) die("resolve " + host + ": " + gai_strerror(rc));
  return res;
}

// Waits (bounded by deadline) until fd is ready for events; dies on timeout.
void wait_ready(int fd, short events, Clock::time_point deadline, const char* what) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) die(std::string("timeout while ") + what);
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return;
    if (n < 0 && errno != EINTR) die(std::string("poll: ") + std::strerror(errno));
  }
}

int recv_main(const Args& a) {
  auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(a.timeout));
  addrinfo* res = resolve(a.bind.empty() ? "::" : a.bind, a.port, true);
  int ls = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (ls < 0) die(std::string("socket: ") + std::strerror(errno));
  int one = 1, zero = 0;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (res->ai_family == AF_INET6) setsockopt(ls, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (bind(ls, res->ai_addr, res->ai_addrlen) != 0)
    die(std::string("bind: ") + std::strerror(errno));
  freeaddrinfo(res);
  if (listen(ls, 1) != 0) die(std::string("listen: ") + std::strerror(errno));
  wait_ready(ls, POLLIN, deadline, "waiting for the connection");
  int fd = accept4(ls, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) die(std::string("accept: ") + std::strerror(errno));
  close(ls);

  Stream stream(0x5EED);
  std::vector<std::uint8_t> buf(256 * 1024), want(buf.size());
  std::uint64_t got = 0, reads = 0;
  bool exact = true, reset = false;
  double max_gap = 0, max_gap_at = 0;
  Clock::time_point last{};
  double last_epoch = 0;
  for (;;) {
    wait_ready(fd, POLLIN, deadline, "receiving");
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      if (errno == ECONNRESET) reset = true;
      std::fprintf(stderr, "gapmeter: read: %s\n", std::strerror(errno));
      break;
    }
    if (n == 0) break;
    auto now = Clock::now();
    double now_epoch = epoch_ms();
    if (reads > 0) {
      double gap = std::chrono::duration<double, std::milli>(now - last).count();
      if (gap >= a.report_ms) std::printf("gap %.0f %.1f\n", last_epoch, gap);
      if (gap > max_gap) {
        max_gap = gap;
        max_gap_at = last_epoch;
      }
    }
    last = now;
    last_epoch = now_epoch;
    ++reads;
    auto len = static_cast<std::size_t>(n);
    if (got + len > a.bytes) {
      exact = false;
      len = static_cast<std::size_t>(a.bytes - got);
    }
    stream.fill(want.data(), len);
    if (std::memcmp(want.data(), buf.data(), len) != 0) exact = false;
    got += static_cast<std::size_t>(n);
  }
  close(fd);
  if (got != a.bytes) exact = false;
  std::printf("received %llu exact %s max_gap_ms %.1f max_gap_at %.0f reads %llu%s\n",
              static_cast<unsigned long long>(got), exact ? "yes" : "no", max_gap, max_gap_at,
              static_cast<unsigned long long>(reads), reset ? " RESET" : "");
  std::fflush(stdout);
  return exact && !reset ? 0 : 1;
}

int send_main(const Args& a) {
  auto start = Clock::now();
  auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.timeout));
  addrinfo* res = resolve(a.host, a.port, false);
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) die(std::string("socket: ") + std::strerror(errno));
  if (connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS)
    die(std::string("connect: ") + std::strerror(errno));
  freeaddrinfo(res);
  wait_ready(fd, POLLOUT, deadline, "connecting");
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err) die(std::string("connect: ") + std::strerror(err));

  Stream stream(0x5EED);
  constexpr std::size_t kWrite = 16 * 1024;
  std::vector<std::uint8_t> buf(kWrite);
  std::size_t pending = 0, off = 0;
  std::uint64_t sent = 0;
  auto t0 = Clock::now();
  while (sent < a.bytes) {
    if (off == pending) {
      pending = static_cast<std::size_t>(std::min<std::uint64_t>(kWrite, a.bytes - sent));
      off = 0;
      // Pace: this chunk may start once the bytes before it are due at the rate.
      auto due = t0 + std::chrono::duration_cast<Clock::duration>(
                          std::chrono::duration<double>(static_cast<double>(sent) / a.rate));
      while (Clock::now() < due) {
        if (Clock::now() > deadline) die("timeout while sending");
        usleep(500);
      }
      stream.fill(buf.data(), pending);
    }
    wait_ready(fd, POLLOUT, deadline, "sending");
    ssize_t n = write(fd, buf.data() + off, pending - off);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      die(std::string("write: ") + std::strerror(errno));
    }
    off += static_cast<std::size_t>(n);
    sent += static_cast<std::uint64_t>(n);
  }
  shutdown(fd, SHUT_WR);
  for (;;) {  // the receiver closes after the last byte: EOF means all of it arrived
    wait_ready(fd, POLLIN, deadline, "waiting for the receiver to close");
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n == 0) break;
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    die(n < 0 ? std::string("read: ") + std::strerror(errno) : "unexpected data from the receiver");
  }
  close(fd);
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("sent %llu in %.2f s\n", static_cast<unsigned long long>(sent), secs);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  if (a.mode == "recv") return recv_main(a);
  if (a.mode == "send") {
    if (a.host.empty()) die("--host is required");
    return send_main(a);
  }
  die("mode must be recv or send");
}
