#include "src/base/endpoint.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace base {

std::optional<Endpoint> Endpoint::parse(std::string_view address, std::uint16_t port) {
  std::string text(address);
  Endpoint ep;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ep.storage_);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ep.storage_);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
  } else if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
  } else {
    return std::nullopt;
  }
  ep.set_port(port);
  return ep;
}

Endpoint Endpoint::from_sockaddr(const sockaddr* sa, socklen_t len) {
  Endpoint ep;
  if (len > sizeof ep.storage_) len = sizeof ep.storage_;
  std::memcpy(&ep.storage_, sa, len);
  return ep;
}

std::uint16_t Endpoint::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

void Endpoint::set_port(std::uint16_t port) {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
}

socklen_t Endpoint::sockaddr_len() const {
  return family() == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

bool Endpoint::same_address(const Endpoint& other) const {
  if (family() != other.family()) return false;
  if (family() == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in*>(&other.storage_)->sin_addr.s_addr;
  }
  if (family() == AF_INET6) {
    return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr,
                       &reinterpret_cast<const sockaddr_in6*>(&other.storage_)->sin6_addr, 16) == 0;
  }
  return false;
}

bool Endpoint::is_wildcard() const {
  if (family() == AF_INET)
    return reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr == 0;
  if (family() == AF_INET6)
    return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr);
  return false;
}

bool Endpoint::operator==(const Endpoint& other) const {
  return same_address(other) && port() == other.port();
}

std::string Endpoint::address_string() const {
  char text[INET6_ADDRSTRLEN] = "?";
  if (family() == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, text,
              sizeof text);
  if (family() == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, text,
              sizeof text);
  return text;
}

std::string Endpoint::to_string() const {
  if (family() == AF_INET6) return "[" + address_string() + "]:" + std::to_string(port());
  return address_string() + ":" + std::to_string(port());
}

bool is_interface_address(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos || slash + 1 >= text.size() || text.size() - slash > 4)
    return false;
  auto address = Endpoint::parse(text.substr(0, slash), 0);
  if (!address) return false;
  int len = 0;
  for (char c : text.substr(slash + 1)) {
    if (c < '0' || c > '9') return false;
    len = len * 10 + (c - '0');
  }
  return len <= (address->family() == AF_INET ? 32 : 128);
}

}  // namespace base
