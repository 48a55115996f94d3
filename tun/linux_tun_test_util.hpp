#pragma once
// Helpers for linux_tun_test.cpp only: a descriptor owner, UDP sockets, and building and
// recognising bare IPv4/IPv6 UDP packets as they cross a TUN. Header-only so that the library
// glob (tun/*.cpp) does not pick them up.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "src/base/bytes.hpp"
#include "src/base/checksum.hpp"

namespace tun::test_util {

// What a test scenario run in a forked child reported: its exit and the text it wrote.
struct ChildOutcome {
  bool exited = false;  // false: killed by a signal (then signal says which)
  int exit_code = -1, signal = 0;
  std::string text;  // what the child wrote to its report descriptor (a failure, or findings)
  bool ok() const { return exited && exit_code == 0; }
};

// Forks; the child runs body(report_fd) and exits with its return value (a hang becomes
// SIGALRM after alarm_seconds). The parent collects what the child wrote and its exit status,
// so a scenario can unshare() namespaces without touching the test process.
template <class Body>
ChildOutcome run_in_child(Body&& body, unsigned alarm_seconds = 60) {
  ChildOutcome outcome;
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    outcome.text = std::string("pipe2: ") + std::strerror(errno);
    return outcome;
  }
  std::fflush(nullptr);
  const pid_t child = ::fork();
  if (child < 0) {
    outcome.text = std::string("fork: ") + std::strerror(errno);
    return outcome;
  }
  if (child == 0) {
    ::close(report[0]);
    ::alarm(alarm_seconds);
    ::_exit(body(report[1]));
  }
  ::close(report[1]);
  char chunk[512];
  for (ssize_t n; (n = ::read(report[0], chunk, sizeof chunk)) > 0;)
    outcome.text.append(chunk, static_cast<std::size_t>(n));
  ::close(report[0]);
  int status = 0;
  if (::waitpid(child, &status, 0) != child) return outcome;
  outcome.exited = WIFEXITED(status);
  outcome.exit_code = outcome.exited ? WEXITSTATUS(status) : -1;
  outcome.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  return outcome;
}

// Runs scenario() in a forked child inside a private network namespace. scenario returns what
// it saw (reported as the outcome's text) or throws; a failure's reason becomes the text.
template <class Scenario>
ChildOutcome run_in_private_netns(Scenario&& scenario, unsigned alarm_seconds = 60) {
  return run_in_child(
      [&](int report_fd) {
        std::string text;
        int code = 1;
        if (::unshare(CLONE_NEWNET) != 0) {
          text = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
        } else {
          try {
            text = scenario();
            code = 0;
          } catch (const std::exception& e) {
            text = e.what();
          }
        }
        [[maybe_unused]] ssize_t ignored = ::write(report_fd, text.data(), text.size());
        return code;
      },
      alarm_seconds);
}

using Bytes = std::vector<std::uint8_t>;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  }
  ~Fd() { ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;

  static SockAddr parse(const std::string& ip, std::uint16_t port) {
    SockAddr a;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    if (::inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(port);
      a.len = sizeof(sockaddr_in);
    } else if (::inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(port);
      a.len = sizeof(sockaddr_in6);
    } else {
      throw std::invalid_argument("not an IP address: " + ip);
    }
    return a;
  }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// A UDP socket bound to ip and an ephemeral port; binding fails unless ip is a local address.
class UdpSocket {
 public:
  explicit UdpSocket(const std::string& ip)
      : fd_(::socket(ip.find(':') == std::string::npos ? AF_INET : AF_INET6,
                     SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    SockAddr at = SockAddr::parse(ip, 0);
    if (::bind(fd_.get(), at.get(), at.len) != 0) {
      throw std::runtime_error("bind " + ip + ": " + std::strerror(errno));
    }
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&at.storage), &at.len);
    port_ = ntohs(reinterpret_cast<sockaddr_in*>(&at.storage)->sin_port);  // same offset in v6
  }
  std::uint16_t port() const { return port_; }
  // One datagram's payload, or "" if none arrives within timeout_ms.
  std::string receive(int timeout_ms) {
    pollfd pfd{fd_.get(), POLLIN, 0};
    if (::poll(&pfd, 1, timeout_ms) != 1) return "";
    char buf[2048];
    const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
  }

 private:
  Fd fd_;
  std::uint16_t port_ = 0;
};

// True if packet is an IPv4 or IPv6 UDP datagram to ip:port carrying exactly payload.
inline bool is_udp_to(const Bytes& packet, const std::string& ip, std::uint16_t port,
                      const std::string& payload) {
  if (packet.empty()) return false;
  const int version = packet[0] >> 4;
  std::size_t udp = 0, dst = 0, dst_len = 0;
  std::uint8_t protocol = 0;
  if (version == 4 && packet.size() >= 20) {
    udp = (packet[0] & 0x0f) * 4u, protocol = packet[9], dst = 16, dst_len = 4;
  } else if (version == 6 && packet.size() >= 40) {
    udp = 40, protocol = packet[6], dst = 24, dst_len = 16;  // no extension headers expected
  } else {
    return false;
  }
  std::uint8_t want[16];
  if (::inet_pton(version == 4 ? AF_INET : AF_INET6, ip.c_str(), want) != 1) return false;
  if (protocol != IPPROTO_UDP || packet.size() < udp + 8) return false;
  if (std::memcmp(packet.data() + dst, want, dst_len) != 0 ||
      base::load_be16(packet, udp + 2) != port) {
    return false;
  }
  return std::string(packet.begin() + static_cast<std::ptrdiff_t>(udp + 8), packet.end()) ==
         payload;
}

// A bare IPv4 UDP packet (no options, UDP checksum 0 = none, which IPv4 allows).
inline Bytes udp4_packet(const std::string& src, std::uint16_t sport, const std::string& dst,
                         std::uint16_t dport, const std::string& payload) {
  const std::size_t total = 28 + payload.size();
  Bytes p(total, 0);
  p[0] = 0x45;
  base::store_be16(p, 2, static_cast<std::uint16_t>(total));
  p[8] = 64, p[9] = IPPROTO_UDP;
  ::inet_pton(AF_INET, src.c_str(), &p[12]);
  ::inet_pton(AF_INET, dst.c_str(), &p[16]);
  base::store_be16(p, 10, base::checksum::internet(std::span(p).first(20)));
  const std::size_t udp_len = 8 + payload.size();
  base::store_be16(p, 20, sport);
  base::store_be16(p, 22, dport);
  base::store_be16(p, 24, static_cast<std::uint16_t>(udp_len));
  std::memcpy(&p[28], payload.data(), payload.size());
  return p;
}

}  // namespace tun::test_util
