#include "tun/bypass.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "src/base/bytes.hpp"
#include "tun/netlink.hpp"

namespace tun {
namespace {

[[noreturn]] void fail_errno(const std::string& what, int error) {
  throw std::runtime_error("bypass: " + what + ": " + std::strerror(error));
}

// A non-blocking, close-on-exec raw socket with the packet's IP header included, marked `mark`.
// -1 for IPv6 on a host without it.
int open_raw(int family, std::uint32_t mark) {
  const std::string name = family == AF_INET ? "IPv4" : "IPv6";
  const int fd = ::socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW);
  if (fd < 0 && family == AF_INET6 && errno == EAFNOSUPPORT) return -1;
  if (fd < 0) fail_errno("open " + name + " raw socket", errno);
  try {
    Bypass::mark_socket(fd, mark);
  } catch (...) {
    ::close(fd);
    throw;
  }
  return fd;
}

}  // namespace

Bypass::Bypass(const std::string& tun_name, std::uint32_t mark, std::uint32_t table,
               std::uint32_t rule_priority)
    : mark_(mark) {
  if (mark == 0) throw std::runtime_error("bypass: fwmark 0 marks nothing");
  if (table == 0 || (table >= 253 && table <= 255))
    throw std::runtime_error("bypass: table " + std::to_string(table) +
                             " is reserved (0 unspec, 253 default, 254 main, 255 local)");
  if (rule_priority == 0 || rule_priority >= 32766)
    throw std::runtime_error("bypass: rule priority " + std::to_string(rule_priority) +
                             " must be 1..32765 (before main's rule at 32766)");
  int ifindex = 0;
  try {
    ifindex = Netlink().ifindex(tun_name);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("bypass: TUN device " + tun_name + ": " + e.what());
  }
  // Sockets first: they cannot leave anything behind in the kernel if the rest fails.
  raw4_ = open_raw(AF_INET, mark);
  try {
    raw6_ = open_raw(AF_INET6, mark);
    mirror_ = std::make_unique<RouteMirror>(ifindex, mark, table, rule_priority);
  } catch (...) {
    ::close(raw4_);
    if (raw6_ >= 0) ::close(raw6_);
    throw;
  }
}

Bypass::~Bypass() {
  ::close(raw4_);
  if (raw6_ >= 0) ::close(raw6_);
  // mirror_ goes next: rules, then T's routes.
}

void Bypass::mark_socket(int fd, std::uint32_t mark) {
  if (::setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0)
    fail_errno("set SO_MARK " + std::to_string(mark) + " on socket " + std::to_string(fd), errno);
}

Bypass::SendResult Bypass::fail(SendResult result, int error, std::uint64_t& counter) {
  counter++;
  counters_.last_errno = error;
  return result;
}

Bypass::SendResult Bypass::send(std::span<const std::uint8_t> packet) {
  sockaddr_storage to{};
  socklen_t to_len = 0;
  int fd = -1;
  bool valid = false;
  // Header sanity only: the length fields must match the packet (the kernel would send a
  // trailer along for IPv4, rewriting the total length, and send IPv6 as given).
  const auto read16 = [&](std::size_t at) { return std::size_t{base::load_be16(packet, at)}; };
  const int version = packet.empty() ? 0 : packet[0] >> 4;
  if (version == 4 && packet.size() >= 20 && (packet[0] & 0x0f) >= 5 &&
      (packet[0] & 0x0f) * 4u <= packet.size() && read16(2) == packet.size()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&to);
    sin->sin_family = AF_INET;
    std::memcpy(&sin->sin_addr, packet.data() + 16, 4);
    to_len = sizeof(sockaddr_in);
    fd = raw4_, valid = true;
  } else if (version == 6 && packet.size() >= 40 && 40 + read16(4) == packet.size()) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&to);
    sin6->sin6_family = AF_INET6;  // port 0: the socket's protocol; scope 0: no link-local
    std::memcpy(&sin6->sin6_addr, packet.data() + 24, 16);
    to_len = sizeof(sockaddr_in6);
    fd = raw6_, valid = true;
  }
  if (!valid) return fail(SendResult::error, EINVAL, counters_.errors);        // malformed
  if (fd < 0) return fail(SendResult::error, EAFNOSUPPORT, counters_.errors);  // no IPv6 here

  ssize_t sent;
  do {
    sent = ::sendto(fd, packet.data(), packet.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                    reinterpret_cast<const sockaddr*>(&to), to_len);
  } while (sent < 0 && errno == EINTR);
  if (sent >= 0) {
    counters_.sent++;
    return SendResult::ok;
  }
  const int error = errno;
  switch (error) {
    case ENETUNREACH:
    case EHOSTUNREACH:
      return fail(SendResult::no_route, error, counters_.no_route);
    case EMSGSIZE:
      return fail(SendResult::too_big, error, counters_.too_big);
    case EAGAIN:
      return fail(SendResult::would_block, error, counters_.would_block);
    default:
      return fail(SendResult::error, error, counters_.errors);
  }
}

}  // namespace tun
