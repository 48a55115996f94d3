#include "src/transport/udp/pmtu.hpp"

#include <sys/socket.h>

#include <algorithm>

namespace transport::udp::pmtu {

int ip_header(int family) {
  return family == AF_INET6 ? 40 : 20;
}

int min_mtu(int family) {
  return family == AF_INET6 ? kMinMtu6 : kMinMtu4;
}

Budget compute(int configured, int config_header, std::span<const PathSample> paths) {
  Budget b;
  b.payload = configured - config_header - kUdpHeader;
  b.ip_mtu = configured;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    const PathSample& p = paths[i];
    if (!p.counts || p.mtu <= 0) continue;
    int mtu = std::max(p.mtu, min_mtu(p.family));
    int payload = mtu - ip_header(p.family) - kUdpHeader;
    if (payload < b.payload) {
      b.payload = payload;
      b.ip_mtu = mtu;
      b.limiting = static_cast<int>(i);
    }
  }
  return b;
}

}  // namespace transport::udp::pmtu
