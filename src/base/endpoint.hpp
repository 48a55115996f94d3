#pragma once
// Endpoint: an IPv4 or IPv6 address with a UDP port, as used on the WAN side.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace base {

class Endpoint {
 public:
  Endpoint() = default;
  // Parses a literal address ("192.0.2.1", "2001:db8::1"); no name resolution.
  static std::optional<Endpoint> parse(std::string_view address, std::uint16_t port);
  static Endpoint from_sockaddr(const sockaddr* sa, socklen_t len);

  int family() const { return storage_.ss_family; }
  std::uint16_t port() const;
  void set_port(std::uint16_t port);
  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t sockaddr_len() const;
  bool same_address(const Endpoint& other) const;  // ignores the port
  bool is_wildcard() const;                        // 0.0.0.0 or ::
  bool operator==(const Endpoint& other) const;    // address and port
  std::string address_string() const;
  std::string to_string() const;  // "192.0.2.1:9899", "[2001:db8::1]:9899"

 private:
  sockaddr_storage storage_{};
};

// True for an address with a prefix length as assigned to an interface: "10.0.0.1/30",
// "fd00::1/64".
bool is_interface_address(std::string_view text);

}  // namespace base
