// rr: TCP request/response ping-pong with small fixed-size messages ("interactive" traffic).
//
//   rr server --port P [--bind ADDR] [--req B] [--resp B] [--timeout S]
//   rr client --host H --port P [--count N] [--req B] [--resp B] [--interval-us U] [--timeout S]
//
// The server accepts one connection (TCP_NODELAY) and, for every request of exactly B (--req,
// default 64) bytes, sends one response of --resp (default 64) bytes, until the client
// half-closes at a request boundary; then it closes and prints
//   "server exchanges=<n> req=<B> resp=<B>"
// The client connects (TCP_NODELAY), does N (default 1000) exchanges one after another -- each
// starts at least --interval-us (default 0: back to back) after the previous one started --
// half-closes, waits for the server's close and prints one line (once connected, also after a
// failure: then with the exchanges completed before it, and the error on stderr):
//   "exchanges=<done> wanted=<N> req=<B> resp=<B> elapsed_s=<s> rtt_avg_us=<us> rtt_max_us=<us>
//    status=<ok|error>"
// The requests are the pseudo-random byte stream of byte_stream.hpp (seed 1), the responses that
// of seed 2 (incompressible, so no tunnel can shrink them); each end checks what it receives.
// Everything is bounded by --timeout seconds (default 60; connect, every read and write, the
// pacing). Exit status: 0 only if all N exchanges (and the close) completed byte-exact -- for
// the server: every request was byte-exact and the connection ended at a request boundary; 1 on
// a short read, unexpected data, error or timeout; 2 on bad usage.

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "byte_stream.hpp"
#include "tool_cli.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr unsigned long kMaxMessage = 1 << 20;
constexpr std::uint64_t kRequestSeed = 1, kResponseSeed = 2;

using tool::Error;
using tool::number;
using tool::usage;

std::string errno_text(const char* what, int err = errno) {
  return std::string(what) + ": " + std::strerror(err);
}

constexpr const char* kUsage =
    "usage: rr server --port P [--bind ADDR] [--req B] [--resp B] [--timeout S]\n"
    "       rr client --host H --port P [--count N] [--req B] [--resp B]\n"
    "                 [--interval-us U] [--timeout S]\n";

struct Args {
  std::string mode, host, bind = "::";
  unsigned long port = 0, count = 1000, req = 64, resp = 64, interval_us = 0, timeout = 60;
};

Args parse(int argc, char** argv) {
  if (argc < 2) usage();
  Args a;
  a.mode = argv[1];
  if (a.mode != "server" && a.mode != "client") usage("mode must be server or client");
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) usage("missing value for " + k);
    std::string v = argv[++i];
    if (k == "--port")
      a.port = number(k, v, 1, 65535);
    else if (k == "--host" && a.mode == "client")
      a.host = v;
    else if (k == "--bind" && a.mode == "server")
      a.bind = v;
    else if (k == "--count" && a.mode == "client")
      a.count = number(k, v, 1, 100000000);
    else if (k == "--req")
      a.req = number(k, v, 1, kMaxMessage);
    else if (k == "--resp")
      a.resp = number(k, v, 1, kMaxMessage);
    else if (k == "--interval-us" && a.mode == "client")
      a.interval_us = number(k, v, 0, 60000000);
    else if (k == "--timeout")
      a.timeout = number(k, v, 1, 86400);
    else
      usage("unknown option " + k + " for mode " + a.mode);
  }
  if (a.port == 0) usage("--port is required");
  if (a.mode == "client" && a.host.empty()) usage("--host is required");
  return a;
}

// A non-blocking socket whose every operation is bounded by one deadline.
class Conn {
 public:
  Conn(int fd, Clock::time_point deadline) : fd_(fd), deadline_(deadline) {}
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() { ::close(fd_); }
  int fd() const { return fd_; }

  void wait(short events, const char* what) {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
      if (left.count() <= 0) throw Error(std::string("timed out ") + what);
      pollfd p{fd_, events, 0};
      int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
      if (r > 0) return;
      if (r < 0 && errno != EINTR) throw Error(errno_text("poll"));
    }
  }
  void send_all(const std::uint8_t* p, std::size_t n) {
    while (n > 0) {
      ssize_t r = ::send(fd_, p, n, MSG_NOSIGNAL);
      if (r > 0) {
        p += r;
        n -= static_cast<std::size_t>(r);
      } else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
        wait(POLLOUT, "sending");
      } else {
        throw Error(errno_text("send"));
      }
    }
  }
  // Reads exactly n bytes. Returns false on EOF before the first byte if eof_ok, throws on an
  // EOF anywhere else (a short read).
  bool recv_all(std::uint8_t* p, std::size_t n, bool eof_ok) {
    std::size_t got = 0;
    while (got < n) {
      ssize_t r = ::recv(fd_, p + got, n - got, 0);
      if (r > 0) {
        got += static_cast<std::size_t>(r);
      } else if (r == 0) {
        if (got == 0 && eof_ok) return false;
        throw Error("connection closed after " + std::to_string(got) + " of " + std::to_string(n) +
                    " bytes (short read)");
      } else if (errno == EAGAIN || errno == EINTR) {
        wait(POLLIN, "receiving");
      } else {
        throw Error(errno_text("recv"));
      }
    }
    return true;
  }

 private:
  int fd_;
  Clock::time_point deadline_;
};

addrinfo* resolve(const std::string& host, unsigned long port, int flags) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | flags;
  addrinfo* res = nullptr;
  if (int e = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); e != 0)
    throw Error("resolve " + host + ": " + ::gai_strerror(e));
  return res;
}

void set_nodelay(int fd) {
  int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
    throw Error(errno_text("setsockopt TCP_NODELAY"));
}

// ---- server ---------------------------------------------------------------------------------

int run_server(const Args& a, Clock::time_point deadline) {
  addrinfo* ai = resolve(a.bind, a.port, AI_PASSIVE | AI_NUMERICHOST);
  int lfd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) {
    ::freeaddrinfo(ai);
    throw Error(errno_text("socket"));
  }
  Conn listener(lfd, deadline);
  int one = 1, zero = 0;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // "::" takes IPv4 too.
  if (ai->ai_family == AF_INET6) ::setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  int rc = ::bind(lfd, ai->ai_addr, ai->ai_addrlen);
  int err = errno;
  ::freeaddrinfo(ai);
  if (rc != 0) throw Error(errno_text("bind", err));
  if (::listen(lfd, 1) != 0) throw Error(errno_text("listen"));

  int fd = -1;
  while (fd < 0) {
    listener.wait(POLLIN, "waiting for the connection");
    fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0 && errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
      throw Error(errno_text("accept"));
  }
  Conn c(fd, deadline);
  set_nodelay(fd);
  std::vector<std::uint8_t> req(a.req), want(a.req), resp(a.resp);
  Stream req_stream(kRequestSeed), resp_stream(kResponseSeed);
  unsigned long n = 0;
  try {
    while (c.recv_all(req.data(), req.size(), true)) {
      req_stream.fill(want.data(), want.size());
      if (req != want) throw Error("request has unexpected content");
      resp_stream.fill(resp.data(), resp.size());
      c.send_all(resp.data(), resp.size());
      ++n;
    }
  } catch (const Error& e) {
    throw Error("after " + std::to_string(n) + " exchanges: " + e.what());
  }
  std::printf("server exchanges=%lu req=%lu resp=%lu\n", n, a.req, a.resp);
  return 0;
}

// ---- client ---------------------------------------------------------------------------------

int run_client(const Args& a, Clock::time_point deadline) {
  addrinfo* ai = resolve(a.host, a.port, 0);
  int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ::freeaddrinfo(ai);
    throw Error(errno_text("socket"));
  }
  Conn c(fd, deadline);
  int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
  int err = errno;
  ::freeaddrinfo(ai);
  if (rc != 0) {
    if (err != EINPROGRESS) throw Error(errno_text("connect", err));
    c.wait(POLLOUT, "connecting");
    socklen_t elen = sizeof err;
    err = 0;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
    if (err != 0) throw Error(errno_text("connect", err));
  }
  set_nodelay(fd);

  std::vector<std::uint8_t> req(a.req), resp(a.resp), want(a.resp);
  Stream req_stream(kRequestSeed), resp_stream(kResponseSeed);
  const auto interval = std::chrono::microseconds(a.interval_us);
  unsigned long done = 0;
  double rtt_sum = 0, rtt_max = 0;
  std::string error;
  auto start = Clock::now();
  auto next = start;
  try {
    for (; done < a.count; ++done) {
      if (done > 0 && interval.count() > 0) {
        auto now = Clock::now();
        if (next > deadline) throw Error("timed out pacing");
        if (now < next) std::this_thread::sleep_until(next);
      }
      auto t0 = Clock::now();
      next = t0 + interval;  // start to start, no catching up after a slow exchange
      req_stream.fill(req.data(), req.size());
      c.send_all(req.data(), req.size());
      c.recv_all(resp.data(), resp.size(), false);
      double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
      resp_stream.fill(want.data(), want.size());
      if (resp != want) throw Error("response has unexpected content");
      rtt_sum += us;
      rtt_max = std::max(rtt_max, us);
    }
    // Half-close at a request boundary; the server answers with its close.
    if (::shutdown(fd, SHUT_WR) != 0) throw Error(errno_text("shutdown"));
    std::uint8_t extra = 0;
    if (c.recv_all(&extra, 1, true))
      throw Error("unexpected data from the server after the last response");
  } catch (const Error& e) {
    error = e.what();
  }
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "exchanges=%lu wanted=%lu req=%lu resp=%lu elapsed_s=%.4f rtt_avg_us=%.1f rtt_max_us=%.1f "
      "status=%s\n",
      done, a.count, a.req, a.resp, secs, done ? rtt_sum / static_cast<double>(done) : 0.0, rtt_max,
      error.empty() ? "ok" : "error");
  std::fflush(stdout);
  if (!error.empty()) {
    std::fprintf(stderr, "rr: client: after %lu of %lu exchanges: %s\n", done, a.count,
                 error.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  tool::name = "rr";
  tool::usage_text = kUsage;
  Args a = parse(argc, argv);
  ::signal(SIGPIPE, SIG_IGN);
  auto deadline = Clock::now() + std::chrono::seconds(a.timeout);
  try {
    return a.mode == "server" ? run_server(a, deadline) : run_client(a, deadline);
  } catch (const Error& e) {
    std::fprintf(stderr, "rr: %s: %s\n", a.mode.c_str(), e.what());
    return 1;
  }
}
