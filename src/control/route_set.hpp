#pragma once
// RouteSet: the [[route]] entries the daemon owns in the main table, pointing into the TUN.
// Installed at start, changed by reload (only the difference), removed when destroyed. Routes
// the operator added by hand with `ip route` are left alone (an identical one is not re-owned).

#include <string>
#include <vector>

#include "policy/prefix_table.hpp"
#include "tun/netlink.hpp"

namespace control {

class RouteSet {
 public:
  RouteSet(tun::Netlink& netlink, std::string ifname)
      : netlink_(netlink), ifname_(std::move(ifname)) {}
  ~RouteSet();
  RouteSet(const RouteSet&) = delete;
  RouteSet& operator=(const RouteSet&) = delete;

  // Makes the owned routes equal to wanted; throws std::runtime_error on a netlink failure
  // (routes changed before the failure stay changed, and owned() says which are ours).
  void apply(const std::vector<policy::Prefix>& wanted);
  const std::vector<policy::Prefix>& owned() const { return owned_; }

 private:
  tun::Netlink& netlink_;
  std::string ifname_;
  std::vector<policy::Prefix> owned_;
};

}  // namespace control
