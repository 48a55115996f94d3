#include "src/gateway/icmp_reply.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "src/base/bytes.hpp"
#include "src/base/checksum.hpp"

namespace gateway::icmp {
namespace {

constexpr std::size_t kIcmpHeaderLen = 8;  // type, code, checksum, 4 unused bytes
constexpr std::size_t kIpv4HeaderLen = 20, kIpv6HeaderLen = 40;
constexpr std::uint8_t kHopLimit = 64;
constexpr std::uint8_t kV4Unreachable = 3, kV4AdminProhibited = 13;
constexpr std::uint8_t kV6Unreachable = 1, kV6AdminProhibited = 1, kV6Redirect = 137;

// v4 addresses that name one host (RFC 1812 4.3.2.7): not 0/8, 127/8, 224/4 or 240/4.
bool single_host_v4(const std::uint8_t* a) {
  return a[0] != 0 && a[0] != 127 && a[0] < 224;
}

bool multicast_or_broadcast_v4(const std::uint8_t* a) {
  return (a[0] & 0xf0) == 0xe0 || (a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255);
}

bool multicast_v6(const std::uint8_t* a) {
  return a[0] == 0xff;
}

// v6 addresses that name one host: not ::, ::1 or multicast.
bool single_host_v6(const std::uint8_t* a) {
  if (multicast_v6(a)) return false;
  bool zero_prefix = std::all_of(a, a + 15, [](std::uint8_t b) { return b == 0; });
  return !(zero_prefix && (a[15] == 0 || a[15] == 1));
}

// True when the packet is a fragment other than the first one.
bool later_fragment(const base::packet::PacketView& view) {
  if (!view.is_fragment) return false;  // parse() sets it for any fragment, first one included
  const std::uint8_t* h = view.bytes.data();
  if (view.version == 4) return (base::load_be16(h + 6) & 0x1fff) != 0;
  // Walk the v6 extension headers again (as parse() does) to find the fragment offset.
  std::uint8_t next = h[6];
  std::size_t offset = kIpv6HeaderLen;
  for (int i = 0; i < 8; ++i) {
    if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS &&
        next != IPPROTO_FRAGMENT)
      break;
    if (offset + 8 > view.total_len) return true;  // unreadable: do not answer
    const std::uint8_t* ext = h + offset;
    if (next == IPPROTO_FRAGMENT && (base::load_be16(ext + 2) & 0xfff8) != 0) return true;
    offset += next == IPPROTO_FRAGMENT ? 8u : (ext[1] + 1u) * 8u;
    next = ext[0];
  }
  return false;
}

// True for ICMP errors, ICMPv6 redirects, and ICMP messages too short to show their type.
bool icmp_not_to_answer(const base::packet::PacketView& view) {
  bool v4 = view.version == 4;
  if (view.protocol != (v4 ? int{IPPROTO_ICMP} : int{IPPROTO_ICMPV6})) return false;
  if (view.l3_header_len >= view.total_len) return true;
  std::uint8_t type = view.bytes[view.l3_header_len];
  if (v4) return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
  return type < 128 || type == kV6Redirect;
}

}  // namespace

std::size_t make_admin_prohibited(const base::packet::PacketView& dropped,
                                  const std::uint8_t* reply_source, std::span<std::uint8_t> out) {
  const bool v4 = dropped.version == 4;
  if (!v4 && dropped.version != 6) return 0;
  if (reply_source == nullptr || dropped.l3_header_len == 0 ||
      dropped.total_len > dropped.bytes.size() || dropped.l3_header_len > dropped.total_len)
    return 0;
  if (later_fragment(dropped) || icmp_not_to_answer(dropped)) return 0;
  const std::uint8_t* src = dropped.src.data();
  const std::uint8_t* dst = dropped.dst.data();
  if (v4 ? !single_host_v4(src) || multicast_or_broadcast_v4(dst) || !single_host_v4(reply_source)
         : !single_host_v6(src) || multicast_v6(dst) || !single_host_v6(reply_source))
    return 0;

  const std::size_t ip_len = v4 ? kIpv4HeaderLen : kIpv6HeaderLen;
  const std::size_t headers = ip_len + kIcmpHeaderLen;
  const std::size_t max_reply = v4 ? kMaxReplyV4 : kMaxReplyV6;
  const std::size_t limit = std::min(max_reply, out.size());
  const std::size_t original = dropped.total_len;
  const std::size_t min_quote =
      std::min({original, dropped.l3_header_len + std::size_t{8}, max_reply - headers});
  if (limit < headers + min_quote) return 0;
  const std::size_t quote = std::min(original, limit - headers);
  const std::size_t len = headers + quote;

  std::uint8_t* p = out.data();
  std::uint8_t* icmp = p + ip_len;
  std::memset(p, 0, headers);
  std::memcpy(icmp + kIcmpHeaderLen, dropped.bytes.data(), quote);
  std::span<const std::uint8_t> message(icmp, kIcmpHeaderLen + quote);
  if (v4) {
    p[0] = 0x45;
    base::store_be16(p + 2, len);
    p[8] = kHopLimit;
    p[9] = IPPROTO_ICMP;
    std::memcpy(p + 12, reply_source, 4);
    std::memcpy(p + 16, src, 4);
    base::store_be16(p + 10, base::checksum::internet({p, kIpv4HeaderLen}));
    icmp[0] = kV4Unreachable;
    icmp[1] = kV4AdminProhibited;
    base::store_be16(icmp + 2, base::checksum::internet(message));
  } else {
    p[0] = 0x60;
    base::store_be16(p + 4, message.size());
    p[6] = IPPROTO_ICMPV6;
    p[7] = kHopLimit;
    std::memcpy(p + 8, reply_source, 16);
    std::memcpy(p + 24, src, 16);
    icmp[0] = kV6Unreachable;
    icmp[1] = kV6AdminProhibited;
    // Pseudo-header (RFC 8200 8.1): source, destination, 32-bit length, 3 zero bytes, 58.
    std::uint8_t tail[8] = {0, 0, 0, 0, 0, 0, 0, IPPROTO_ICMPV6};
    base::store_be16(tail + 2, message.size());
    std::uint16_t sum = base::checksum::add(std::span<const std::uint8_t>(p + 8, 32));
    sum = base::checksum::add(tail, sum);
    base::store_be16(icmp + 2, base::checksum::internet(message, sum));
  }
  return len;
}

RateLimiter::RateLimiter(double per_second, double burst)
    : per_second_(std::max(per_second, 0.0)), burst_(std::max(burst, 0.0)), tokens_(burst_) {}

bool RateLimiter::allow(double now_seconds) {
  if (started_ && now_seconds > last_)
    tokens_ = std::min(burst_, tokens_ + (now_seconds - last_) * per_second_);
  if (!started_ || now_seconds > last_) last_ = now_seconds;
  started_ = true;
  // A little slack so that e.g. 0.1 s at 10/s refills one whole token despite rounding.
  if (tokens_ + 1e-9 >= 1.0) {
    tokens_ = std::max(tokens_ - 1.0, 0.0);
    ++allowed_;
    return true;
  }
  ++suppressed_;
  return false;
}

}  // namespace gateway::icmp
