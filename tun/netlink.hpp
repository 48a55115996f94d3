#pragma once
// tun::Netlink: the few rtnetlink operations the gateway needs to configure its TUN interface
// (MTU, link up, addresses, routes), over libnl-3 route. No shelling out to ip(8).
//
// Contract for every method: it either did what it says (or found it already done where noted),
// or it throws std::runtime_error "netlink: <what was attempted>: <libnl error text>", e.g.
// "netlink: set mtu 1400 on tun0: Invalid input data or parameter". Addresses and prefixes are
// IPv4 or IPv6 text with an optional "/len" ("10.255.0.1/30", "fd00::1/64"; no "/len" means a
// host address). One object owns one NETLINK_ROUTE socket; use it from one thread at a time.

#include <string>

struct nl_sock;

namespace tun {

struct LinkInfo {
  int ifindex = 0;
  int mtu = 0;
  bool up = false;  // administratively up (IFF_UP)
};

class Netlink {
 public:
  // Allocates and connects the socket; throws if that fails.
  Netlink();
  ~Netlink();
  Netlink(const Netlink&) = delete;
  Netlink& operator=(const Netlink&) = delete;

  // Reads the interface's state from the kernel; throws if there is no such interface.
  LinkInfo link_info(const std::string& ifname);
  int ifindex(const std::string& ifname) { return link_info(ifname).ifindex; }

  void set_mtu(const std::string& ifname, int mtu);
  void set_up(const std::string& ifname);

  // Adds cidr as a local address of ifname (scope global). Already present: not an error.
  // IPv6 addresses skip duplicate address detection (IFA_F_NODAD), so they can be bound to as
  // soon as this returns; there is nobody to collide with on a TUN.
  void add_address(const std::string& ifname, const std::string& cidr);

  // Adds or removes the route "prefix dev ifname" in the main table (scope link, protocol
  // static), like `ip route add|del PREFIX dev IFNAME`. prefix must have no host bits set.
  // add_route: an existing route to the same prefix and metric counts as present, even one via
  // another device (the kernel answers EEXIST to both). The link must be up first.
  // remove_route: a route or an interface that is already gone is not an error.
  // Both return true when they changed the table, false when it already was that way.
  bool add_route(const std::string& ifname, const std::string& prefix);
  bool remove_route(const std::string& ifname, const std::string& prefix);

 private:
  nl_sock* sock_;
};

}  // namespace tun
