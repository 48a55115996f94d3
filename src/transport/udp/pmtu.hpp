#pragma once
// Path MTU budget of the udp transport (issue "real networks", item 4): pure logic, no sockets.
//
// A peer's SCTP packets travel as UDP datagrams on its primary path, which may change at any
// time, so they are sized for the smallest MTU among the paths that may carry them (up, or the
// primary) and never for more than `[transport] path_mtu`. Each path's MTU is what the kernel
// says about its route (IP_MTU / IPV6_MTU on a connected socket): the route's MTU, or less once
// an ICMP "fragmentation needed" / "packet too big" has put a PMTU entry into the kernel's cache.
//
//   budget (largest UDP payload = SCTP packet) = min(path_mtu - config IP header,
//                                                    min over counted paths (mtu - IP header)) - 8
//   usrsctp's spp_pathmtu                      = budget - 12 (its packets reach spp_pathmtu + 12)

#include <cstddef>
#include <cstdint>
#include <span>

namespace transport::udp::pmtu {

inline constexpr int kUdpHeader = 8;
// usrsctp (AF_CONN) sends packets of up to spp_pathmtu + 12 bytes (measured: bundled control
// chunks; the 12-byte common header is not counted against spp_pathmtu).
inline constexpr int kSctpSlack = 12;
// The smallest MTU a path can have: Linux's min_pmtu (IPv4: a smaller "fragmentation needed" is
// raised to it) and the IPv6 minimum. With IPv4, 552 - 20 - 8 - 12 = 512 is usrsctp's own
// smallest accepted spp_pathmtu (SCTP_SMALLEST_PMTU).
inline constexpr int kMinMtu4 = 552, kMinMtu6 = 1280;

int ip_header(int family);  // 20 (AF_INET) or 40 (AF_INET6)
int min_mtu(int family);

struct PathSample {
  int family = 0;       // AF_INET or AF_INET6
  int mtu = 0;          // the kernel's MTU towards the path's remote; 0: unknown (not counted)
  bool counts = false;  // the path is up or the primary: its packets may take it
};

struct Budget {
  int payload = 0;    // largest UDP payload (one SCTP packet), bytes
  int ip_mtu = 0;     // the IP MTU that sets it (of the limiting path, or path_mtu)
  int limiting = -1;  // index of the limiting path; -1: [transport] path_mtu itself
  int reserve = 0;    // bytes of the payload kept for a framing below SCTP (FEC), not SCTP's
  // usrsctp's spp_pathmtu; never below its smallest (512), where the reserve gives way.
  std::uint32_t sctp_pathmtu() const {
    return static_cast<std::uint32_t>(payload - kSctpSlack - reserve < 512
                                          ? payload - kSctpSlack
                                          : payload - kSctpSlack - reserve);
  }
  bool operator==(const Budget&) const = default;
};

// configured: [transport] path_mtu; config_header: the IP header assumed for it (20, or 40 when
// any WAN socket is IPv6). A path only lowers the budget (ties keep path_mtu as the reason).
Budget compute(int configured, int config_header, std::span<const PathSample> paths);

// A packet usrsctp allows to be fragmented (set_df == 0) that is larger than the budget: a DATA
// chunk cut for a larger MTU before it dropped (SCTP cannot cut it again). It must go out as IP
// fragments, or it would be refused for ever and stall the association.
inline bool must_fragment(bool set_df, std::size_t length, const Budget& budget) {
  return !set_df && length > static_cast<std::size_t>(budget.payload);
}

// After the kernel refused a datagram as too big (EMSGSIZE: an ICMP lowered its PMTU), the paths
// are checked again at once, but not more often than every min_gap seconds: the delay until the
// check, given the last one at `last`.
inline double recheck_delay(double last, double now, double min_gap) {
  return last + min_gap > now ? last + min_gap - now : 0.0;
}

}  // namespace transport::udp::pmtu
