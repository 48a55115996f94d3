#include "tun/netlink.hpp"

#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/addr.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>
#include <sys/socket.h>

#include "tun/libnl.hpp"

namespace tun {
namespace {

using libnl::AddrPtr;
using libnl::LinkPtr;
using libnl::NlAddrPtr;
using libnl::RoutePtr;

constexpr libnl::Errors kErrors("netlink");

// Parses "addr[/len]", accepting only full IPv4 and IPv6 addresses. nl_addr_parse() alone also
// takes MAC addresses and turns "default"/"any"/"all" into a zero-length AF_INET address.
NlAddrPtr parse_ip(const std::string& text, const std::string& what) {
  nl_addr* parsed = nullptr;
  kErrors.check(nl_addr_parse(text.c_str(), AF_UNSPEC, &parsed), what);
  NlAddrPtr address(parsed);
  const int family = nl_addr_get_family(address.get());
  const unsigned len = nl_addr_get_len(address.get());
  if (!(family == AF_INET && len == 4) && !(family == AF_INET6 && len == 16)) {
    kErrors.fail(what, "not an IPv4 or IPv6 address");
  }
  return address;
}

}  // namespace

Netlink::Netlink() : sock_(libnl::route_socket(kErrors)) {}

Netlink::~Netlink() {
  nl_socket_free(sock_);
}  // also closes the socket

namespace {

LinkPtr get_link(nl_sock* sock, const std::string& ifname, const std::string& what) {
  rtnl_link* link = nullptr;
  kErrors.check(rtnl_link_get_kernel(sock, 0, ifname.c_str(), &link), what);
  return LinkPtr(link);
}

// Applies the attributes set in `change` to the interface, like `ip link set`.
void change_link(nl_sock* sock, const std::string& ifname, const LinkPtr& change,
                 const std::string& what) {
  const LinkPtr current = get_link(sock, ifname, what);
  kErrors.check(rtnl_link_change(sock, current.get(), change.get(), 0), what);
}

}  // namespace

LinkInfo Netlink::link_info(const std::string& ifname) {
  const LinkPtr link = get_link(sock_, ifname, "look up " + ifname);
  return LinkInfo{.ifindex = rtnl_link_get_ifindex(link.get()),
                  .mtu = static_cast<int>(rtnl_link_get_mtu(link.get())),
                  .up = (rtnl_link_get_flags(link.get()) & IFF_UP) != 0};
}

void Netlink::set_mtu(const std::string& ifname, int mtu) {
  const std::string what = "set mtu " + std::to_string(mtu) + " on " + ifname;
  if (mtu <= 0) kErrors.fail(what, nl_geterror(NLE_INVAL));  // libnl takes it as unsigned
  const LinkPtr change = kErrors.allocated(LinkPtr(rtnl_link_alloc()), what);
  rtnl_link_set_mtu(change.get(), static_cast<unsigned>(mtu));
  change_link(sock_, ifname, change, what);
}

void Netlink::set_up(const std::string& ifname) {
  const std::string what = "set link up on " + ifname;
  const LinkPtr change = kErrors.allocated(LinkPtr(rtnl_link_alloc()), what);
  rtnl_link_set_flags(change.get(), IFF_UP);
  change_link(sock_, ifname, change, what);
}

void Netlink::add_address(const std::string& ifname, const std::string& cidr) {
  const std::string what = "add address " + cidr + " to " + ifname;
  const NlAddrPtr local = parse_ip(cidr, what);
  const LinkPtr link = get_link(sock_, ifname, what);
  const AddrPtr address = kErrors.allocated(AddrPtr(rtnl_addr_alloc()), what);
  rtnl_addr_set_ifindex(address.get(), rtnl_link_get_ifindex(link.get()));
  kErrors.check(rtnl_addr_set_local(address.get(), local.get()),
                what);  // also sets family, prefixlen
  // Without NODAD an IPv6 address stays tentative for a moment after the kernel acknowledges it
  // (DAD finishes in a work item even on a NOARP link), and bind() to it fails meanwhile.
  if (nl_addr_get_family(local.get()) == AF_INET6) rtnl_addr_set_flags(address.get(), IFA_F_NODAD);
  const int err = rtnl_addr_add(sock_, address.get(), 0);
  if (err == -NLE_EXIST) return;
  kErrors.check(err, what);
}

namespace {

enum class RouteChange { kAdd, kRemove };

// True when the route was added or removed; false when it was already there / already gone.
bool change_route(nl_sock* sock, RouteChange change, const std::string& ifname,
                  const std::string& prefix) {
  const bool add = change == RouteChange::kAdd;
  const std::string what = (add ? "add route " : "remove route ") + prefix + " dev " + ifname;
  const NlAddrPtr dst = parse_ip(prefix, what);

  rtnl_link* found = nullptr;
  int err = rtnl_link_get_kernel(sock, 0, ifname.c_str(), &found);
  const LinkPtr link(found);
  // The interface, and so its routes, are gone. (libnl 3.7 reports ENODEV as NLE_NODEV, older
  // releases as NLE_OBJ_NOTFOUND.)
  if (!add && (err == -NLE_NODEV || err == -NLE_OBJ_NOTFOUND)) return false;
  kErrors.check(err, what);
  // The kernel answers ENETDOWN, which libnl reports as "Unspecific failure": say it plainly.
  if (add && !(rtnl_link_get_flags(link.get()) & IFF_UP)) kErrors.fail(what, "interface is down");

  const RoutePtr route = kErrors.allocated(RoutePtr(rtnl_route_alloc()), what);
  rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
  rtnl_route_set_scope(route.get(), RT_SCOPE_LINK);
  rtnl_route_set_protocol(route.get(), RTPROT_STATIC);
  kErrors.check(rtnl_route_set_dst(route.get(), dst.get()), what);  // also sets the family
  rtnl_nexthop* nexthop = rtnl_route_nh_alloc();
  kErrors.allocated(nexthop, what);
  rtnl_route_nh_set_ifindex(nexthop, rtnl_link_get_ifindex(link.get()));
  rtnl_route_add_nexthop(route.get(), nexthop);  // the route owns it from here

  // NLM_F_EXCL as ip(8) sends it; libnl adds NLM_F_CREATE itself.
  err =
      add ? rtnl_route_add(sock, route.get(), NLM_F_EXCL) : rtnl_route_delete(sock, route.get(), 0);
  if (add && err == -NLE_EXIST) return false;
  if (!add && err == -NLE_OBJ_NOTFOUND) return false;
  kErrors.check(err, what);
  return true;
}

}  // namespace

bool Netlink::add_route(const std::string& ifname, const std::string& prefix) {
  return change_route(sock_, RouteChange::kAdd, ifname, prefix);
}

bool Netlink::remove_route(const std::string& ifname, const std::string& prefix) {
  return change_route(sock_, RouteChange::kRemove, ifname, prefix);
}

}  // namespace tun
