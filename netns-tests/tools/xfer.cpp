// xfer: a TCP traffic generator that verifies every byte it receives.
//
//   xfer server --port P [--bind ADDR] [--count N] [--timeout S]
//   xfer client --host H --port P [--conns C] [--bytes B] [--timeout S] [--seed X]
//
// Per connection the client sends a 16-byte header (seed, length; big-endian u64) followed by
// `length` bytes of the pseudo-random stream of `seed`. The server checks them, answers one
// verdict byte ('K' = byte-exact, 'X' = mismatch), and on 'K' sends `length` bytes of the stream
// of seed+1, which the client checks. Streams are xorshift64*, so both ends generate them
// independently. The server exits after N connections (N = 0: serve until the timeout); both
// sides give up at their timeout (default 60 s). Exit status 0 only if every connection was exact.

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "byte_stream.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kChunk = 64 * 1024;
constexpr std::uint64_t kMaxLength = std::uint64_t{1} << 40;

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

// A non-blocking socket whose every operation is bounded by one deadline.
class Conn {
 public:
  Conn(int fd, Clock::time_point deadline) : fd_(fd), deadline_(deadline) {}
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() { ::close(fd_); }

  void wait(short events) {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
      if (left.count() <= 0) throw Error("timed out");
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
        wait(POLLOUT);
      } else {
        throw Error(errno_text("send"));
      }
    }
  }
  void recv_all(std::uint8_t* p, std::size_t n) {
    while (n > 0) {
      ssize_t r = ::recv(fd_, p, n, 0);
      if (r > 0) {
        p += r;
        n -= static_cast<std::size_t>(r);
      } else if (r == 0) {
        throw Error("connection closed early");
      } else if (errno == EAGAIN || errno == EINTR) {
        wait(POLLIN);
      } else {
        throw Error(errno_text("recv"));
      }
    }
  }
  void send_stream(std::uint64_t seed, std::uint64_t length) {
    Stream s(seed);
    std::vector<std::uint8_t> buf(kChunk);
    for (std::uint64_t done = 0; done < length;) {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, length - done));
      s.fill(buf.data(), n);
      send_all(buf.data(), n);
      done += n;
    }
  }
  // Returns the offset of the first wrong byte, or `length` if all were right.
  std::uint64_t check_stream(std::uint64_t seed, std::uint64_t length) {
    Stream s(seed);
    std::vector<std::uint8_t> got(kChunk), want(kChunk);
    for (std::uint64_t done = 0; done < length;) {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, length - done));
      recv_all(got.data(), n);
      s.fill(want.data(), n);
      if (std::memcmp(got.data(), want.data(), n) != 0) {
        auto bad = std::mismatch(got.begin(), got.begin() + static_cast<long>(n), want.begin());
        return done + static_cast<std::uint64_t>(bad.first - got.begin());
      }
      done += n;
    }
    return length;
  }

 private:
  int fd_;
  Clock::time_point deadline_;
};

void put_u64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}
std::uint64_t get_u64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}

std::mutex g_log_mu;
void log_line(const std::string& s) {
  std::lock_guard lock(g_log_mu);
  std::fprintf(stderr, "xfer: %s\n", s.c_str());
}

// ---- server ---------------------------------------------------------------------------------

bool serve_one(int fd, Clock::time_point deadline, const std::string& who) {
  try {
    Conn c(fd, deadline);
    std::uint8_t hdr[16];
    c.recv_all(hdr, sizeof hdr);
    std::uint64_t seed = get_u64(hdr), length = get_u64(hdr + 8);
    if (length > kMaxLength) throw Error("absurd length " + std::to_string(length));
    std::uint64_t ok = c.check_stream(seed, length);
    std::uint8_t verdict = ok == length ? 'K' : 'X';
    c.send_all(&verdict, 1);
    if (verdict != 'K')
      throw Error("data mismatch at offset " + std::to_string(ok) + " of " +
                  std::to_string(length));
    c.send_stream(seed + 1, length);
    return true;
  } catch (const Error& e) {
    log_line("server: " + who + ": " + e.what());
    return false;
  }
}

// getaddrinfo() for a numeric port; the result is freed by the caller.
addrinfo* resolve(const std::string& host, int port, int flags) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | flags;
  addrinfo* res = nullptr;
  if (int e = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); e != 0)
    throw Error("resolve " + host + ": " + ::gai_strerror(e));
  return res;
}

int run_server(const std::string& bind_addr, int port, long count, Clock::time_point deadline) {
  addrinfo* ai = resolve(bind_addr, port, AI_PASSIVE | AI_NUMERICHOST);
  int lfd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) throw Error(errno_text("socket"));
  int one = 1, zero = 0;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // "::" takes IPv4 too.
  if (ai->ai_family == AF_INET6) ::setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (::bind(lfd, ai->ai_addr, ai->ai_addrlen) < 0) throw Error(errno_text("bind"));
  ::freeaddrinfo(ai);
  if (::listen(lfd, 128) < 0) throw Error(errno_text("listen"));

  std::vector<std::thread> workers;
  std::atomic<long> good{0};
  long accepted = 0;
  Conn waiter(lfd, deadline);  // owns lfd; used only to poll for connections
  while (count == 0 || accepted < count) {
    try {
      waiter.wait(POLLIN);
    } catch (const Error&) {
      break;  // deadline reached
    }
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    int fd =
        ::accept4(lfd, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++accepted;
    std::string who = "conn " + std::to_string(accepted);
    workers.emplace_back([fd, deadline, who, &good] {
      if (serve_one(fd, deadline, who)) ++good;
    });
  }
  for (auto& t : workers) t.join();
  std::printf("server: %ld/%ld connections byte-exact (wanted %ld)\n", good.load(), accepted,
              count);
  bool ok = good == accepted && (count == 0 || accepted == count);
  return ok ? 0 : 1;
}

// ---- client ---------------------------------------------------------------------------------

void run_conn(const addrinfo* ai, std::uint64_t seed, std::uint64_t length,
              Clock::time_point deadline) {
  int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error(errno_text("socket"));
  Conn c(fd, deadline);
  if (::connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
    if (errno != EINPROGRESS) throw Error(errno_text("connect"));
    c.wait(POLLOUT);
    int err = 0;
    socklen_t elen = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
    if (err != 0) throw Error(std::string("connect: ") + std::strerror(err));
  }
  std::uint8_t hdr[16];
  put_u64(hdr, seed);
  put_u64(hdr + 8, length);
  c.send_all(hdr, sizeof hdr);
  c.send_stream(seed, length);
  std::uint8_t verdict = 0;
  c.recv_all(&verdict, 1);
  if (verdict != 'K')
    throw Error("server saw corrupted data (verdict '" + std::string(1, char(verdict)) + "')");
  std::uint64_t ok = c.check_stream(seed + 1, length);
  if (ok != length)
    throw Error("reply mismatch at offset " + std::to_string(ok) + " of " + std::to_string(length));
}

int run_client(const std::string& host, int port, long conns, std::uint64_t bytes,
               std::uint64_t seed, Clock::time_point deadline) {
  addrinfo* res = resolve(host, port, 0);
  auto start = Clock::now();
  std::atomic<long> good{0};
  std::vector<std::thread> workers;
  for (long i = 0; i < conns; ++i) {
    workers.emplace_back([&, i] {
      try {
        run_conn(res, seed + 2 * static_cast<std::uint64_t>(i), bytes, deadline);
        ++good;
      } catch (const Error& e) {
        log_line("client: conn " + std::to_string(i + 1) + ": " + e.what());
      }
    });
  }
  for (auto& t : workers) t.join();
  ::freeaddrinfo(res);
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("%ld/%ld connections byte-exact, 2x%llu bytes each (%.2f s)\n", good.load(), conns,
              static_cast<unsigned long long>(bytes), secs);
  return good == conns ? 0 : 1;
}

[[noreturn]] void usage() {
  std::fprintf(
      stderr,
      "usage: xfer server --port P [--bind ADDR] [--count N] [--timeout S]\n"
      "       xfer client --host H --port P [--conns C] [--bytes B] [--timeout S] [--seed X]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage();
  std::string mode = argv[1];
  std::map<std::string, std::string> opt{
      {"--bind", "::"},       {"--count", "1"},
      {"--timeout", "60"},    {"--conns", "1"},
      {"--bytes", "1048576"}, {"--seed", std::to_string(::time(nullptr) ^ (::getpid() << 16))}};
  for (int i = 2; i < argc; i += 2) {
    std::string key = argv[i];
    if (i + 1 >= argc || (!opt.count(key) && key != "--port" && key != "--host")) usage();
    opt[key] = argv[i + 1];
  }
  ::signal(SIGPIPE, SIG_IGN);
  try {
    auto num = [&](const char* key) {
      auto it = opt.find(key);
      if (it == opt.end()) usage();
      char* end = nullptr;
      unsigned long long v = std::strtoull(it->second.c_str(), &end, 0);
      if (it->second.empty() || *end != '\0')
        throw Error(std::string("bad ") + key + " " + it->second);
      return v;
    };
    auto deadline = Clock::now() + std::chrono::seconds(num("--timeout"));
    int port = static_cast<int>(num("--port"));
    if (mode == "server")
      return run_server(opt["--bind"], port, static_cast<long>(num("--count")), deadline);
    if (mode == "client" && opt.count("--host"))
      return run_client(opt["--host"], port, static_cast<long>(num("--conns")), num("--bytes"),
                        num("--seed"), deadline);
    usage();
  } catch (const Error& e) {
    log_line(e.what());
    return 1;
  }
}
