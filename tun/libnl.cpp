#include "tun/libnl.hpp"

#include <stdexcept>

namespace tun::libnl {

void Errors::fail(const std::string& what, const std::string& why) const {
  throw std::runtime_error(std::string(prefix_) + ": " + what + ": " + why);
}

nl_sock* route_socket(const Errors& errors) {
  nl_sock* sock = errors.allocated(nl_socket_alloc(), "allocate socket");
  const int err = nl_connect(sock, NETLINK_ROUTE);
  if (err < 0) {
    nl_socket_free(sock);
    errors.fail("connect NETLINK_ROUTE socket", nl_geterror(err));
  }
  return sock;
}

}  // namespace tun::libnl
