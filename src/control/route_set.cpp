#include "src/control/route_set.hpp"

#include <algorithm>

#include "src/base/log.hpp"

namespace control {

RouteSet::~RouteSet() {
  for (const policy::Prefix& prefix : owned_) {
    try {
      netlink_.remove_route(ifname_, prefix.to_string());
    } catch (const std::exception& error) {
      LOG_WARN("route %s dev %s: %s", prefix.to_string().c_str(), ifname_.c_str(), error.what());
    }
  }
}

void RouteSet::apply(const std::vector<policy::Prefix>& wanted) {
  auto contains = [](const std::vector<policy::Prefix>& list, const policy::Prefix& p) {
    return std::find(list.begin(), list.end(), p) != list.end();
  };
  for (auto it = owned_.begin(); it != owned_.end();) {
    if (contains(wanted, *it)) {
      ++it;
      continue;
    }
    netlink_.remove_route(ifname_, it->to_string());
    LOG_INFO("route %s dev %s removed", it->to_string().c_str(), ifname_.c_str());
    it = owned_.erase(it);
  }
  for (const policy::Prefix& prefix : wanted) {
    if (contains(owned_, prefix)) continue;
    if (netlink_.add_route(ifname_, prefix.to_string())) {
      owned_.push_back(prefix);
      LOG_INFO("route %s dev %s added", prefix.to_string().c_str(), ifname_.c_str());
    } else {
      LOG_INFO("route %s: already present, left to its owner", prefix.to_string().c_str());
    }
  }
}

}  // namespace control
