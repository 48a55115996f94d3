#pragma once
// tun::libnl: what the libnl-3 users of tun/ (Netlink, RouteMirror) share: owning pointers for
// libnl's reference-counted objects, errors thrown as std::runtime_error
// "<prefix>: <what was attempted>: <libnl error text>", and NETLINK_ROUTE sockets.
// Internal to tun/: the public headers only forward-declare libnl types.

#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <netlink/route/rule.h>
#include <netlink/socket.h>

#include <memory>
#include <string>

namespace tun::libnl {

// unique_ptr deleters for libnl's reference-counted objects.
template <typename T, void (*Put)(T*)>
struct Putter {
  void operator()(T* object) const { Put(object); }
};
using LinkPtr = std::unique_ptr<rtnl_link, Putter<rtnl_link, rtnl_link_put>>;
using AddrPtr = std::unique_ptr<rtnl_addr, Putter<rtnl_addr, rtnl_addr_put>>;
using RoutePtr = std::unique_ptr<rtnl_route, Putter<rtnl_route, rtnl_route_put>>;
using RulePtr = std::unique_ptr<rtnl_rule, Putter<rtnl_rule, rtnl_rule_put>>;
using NlAddrPtr = std::unique_ptr<nl_addr, Putter<nl_addr, nl_addr_put>>;
using CbPtr = std::unique_ptr<nl_cb, Putter<nl_cb, nl_cb_put>>;

// Throws the errors of one user, its messages starting with prefix ("netlink", "bypass").
class Errors {
 public:
  explicit constexpr Errors(const char* prefix) : prefix_(prefix) {}

  [[noreturn]] void fail(const std::string& what, const std::string& why) const;
  // err is a libnl return value: >= 0 success, < 0 a negated NLE_* code.
  void check(int err, const std::string& what) const {
    if (err < 0) fail(what, nl_geterror(err));
  }
  // object, unless it is null (an allocation failed).
  template <typename Ptr>
  Ptr allocated(Ptr object, const std::string& what) const {
    if (!object) fail(what, nl_geterror(NLE_NOMEM));
    return object;
  }

 private:
  const char* prefix_;
};

// A socket connected to NETLINK_ROUTE, the caller's to nl_socket_free(); throws through errors.
nl_sock* route_socket(const Errors& errors);

}  // namespace tun::libnl
