#pragma once
// ICMP "destination unreachable, communication administratively prohibited" errors for packets
// the policy drops (ICMPv4 type 3 code 13, RFC 1812; ICMPv6 type 1 code 1, RFC 4443), and the
// token bucket that rate-limits them.

#include <cstddef>
#include <cstdint>
#include <span>

#include "src/base/packet.hpp"

namespace gateway::icmp {

// Largest error packets (RFC 1812 4.3.2.3, RFC 4443 2.4(c)); the quote is cut to fit.
inline constexpr std::size_t kMaxReplyV4 = 576;
inline constexpr std::size_t kMaxReplyV6 = 1280;

// Builds into `out` the complete IP packet of an admin-prohibited error for `dropped` and returns
// its length, or 0 when none may be sent:
//  - dropped is an ICMP error (v4 types 3, 4, 5, 11, 12; v6 types < 128), an ICMPv6 redirect, or
//    ICMP whose type cannot be read;
//  - dropped is a fragment other than the first (v4 offset, v6 fragment header offset non-zero);
//  - its source does not name one host (v4: 0/8, 127/8, 224/4 multicast, 240/4 incl.
//    255.255.255.255; v6: ::, ::1, ff00::/8), or its destination is multicast (v4 also
//    255.255.255.255);
//  - reply_source is null or itself not a single-host address by the same rule;
//  - `out` cannot hold the headers plus the minimal quote, min(original, its L3 header + 8).
// Otherwise the quote is as much of the original (total_len, trailing bytes excluded) as fits in
// min(576 / 1280, out.size()) bytes. The reply goes from reply_source (addr_len() bytes, same
// family) to dropped's source: v4 IHL 5, TOS 0, ID 0, DF clear, TTL 64, protocol 1; v6 class and
// flow label 0, hop limit 64, next header 58; both checksums set. `out` must not overlap
// dropped.bytes. Pure: no state, no I/O.
std::size_t make_admin_prohibited(const base::packet::PacketView& dropped,
                                  const std::uint8_t* reply_source, std::span<std::uint8_t> out);

// Token bucket: holds up to `burst` tokens, starts full, gains `per_second` tokens per second;
// each allowed reply takes one. Time is the caller's monotonic clock in seconds; a clock going
// backwards adds nothing. burst < 1 allows nothing.
class RateLimiter {
 public:
  static constexpr double kDefaultPerSecond = 10, kDefaultBurst = 20;

  RateLimiter() : RateLimiter(kDefaultPerSecond, kDefaultBurst) {}
  RateLimiter(double per_second, double burst);

  // True (and one token taken) when a reply may be sent at now_seconds.
  bool allow(double now_seconds);

  std::uint64_t allowed() const { return allowed_; }
  std::uint64_t suppressed() const { return suppressed_; }

 private:
  double per_second_, burst_, tokens_;
  double last_ = 0;
  bool started_ = false;
  std::uint64_t allowed_ = 0, suppressed_ = 0;
};

}  // namespace gateway::icmp
