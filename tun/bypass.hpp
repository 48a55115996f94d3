#pragma once
// tun::Bypass: sends packets read from the TUN on through the host's normal routing, as if the
// TUN did not exist, without them ever coming back into it. The operator may route anything,
// even a default route, into the TUN in the main table; bypassed packets and the daemon's own
// WAN sockets must not follow those routes.
//
// How:
//  - Routing table T (`table`) mirrors the main table minus every route whose device, or any of
//    whose nexthops' devices, is the TUN; IPv4 and IPv6. It is filled at construction and kept
//    current from route notifications (watch fd(), call on_readable()), by difference: missing
//    routes are added (NLM_F_REPLACE where that is atomic), stale ones removed, never a flush and
//    refill. T belongs to Bypass: anything else in it is removed.
//  - T also holds "unreachable default metric 4294967295" for both families. Rule lookup falls
//    through to the next rule (main, with the TUN in it) when T has no route; the unreachable
//    default ends the lookup instead, so a packet nothing but the TUN could carry fails with
//    ENETUNREACH (SendResult::no_route) rather than looping. A "throw" route of main is copied
//    as "unreachable" for the same reason.
//  - ip rules "fwmark M lookup T" at priority P (IPv4 and IPv6) send every packet marked M to T.
//    Rules of priority below P (0: local) still apply first, so marked packets to local
//    addresses are delivered locally.
//  - Raw sockets marked M send the packets: IPv4 SOCK_RAW/IPPROTO_RAW (IP_HDRINCL implied) and
//    IPv6 SOCK_RAW/IPPROTO_RAW (header included: Linux sets hdrincl for IPPROTO_RAW in IPv6
//    too). The packet keeps the original client's source address and no option is needed for
//    that: the route lookup runs with the (unbound) socket's source, i.e. none, and the kernel
//    copies the header as given without checking that its source is local (IPV6_TRANSPARENT /
//    IP_TRANSPARENT / IP_FREEBIND only matter for bind() and IPV6_PKTINFO). The test checks the
//    source on the wire for both families; IPv6 packets leave byte for byte as sent, IPv4 ones
//    get their header checksum and total length recomputed (and an IP ID if it was 0). T is
//    therefore consulted by destination and mark only (a "from" route or rule does not see the
//    client's source). The TTL / hop limit is not decremented: the kernel did that when it
//    forwarded the packet into the TUN.
//  - mark_socket() puts the mark on the daemon's WAN UDP sockets, so they route through T too.
//
// Not copied, and so not in T: routes libnl 3.7 cannot parse or reproduce (an encapsulation
// other than MPLS, counted in route_stats().refused) and what libnl does not read (RTA_EXPIRES:
// the copy is removed when the kernel expires the original). RTA_PREF is copied. The TUN is
// identified by its ifindex at construction; if the TUN is recreated, build a new Bypass. One
// Bypass per table at a time: destroying one flushes T and removes the rules.
//
// Needs CAP_NET_ADMIN (rules, routes, SO_MARK) and CAP_NET_RAW (raw sockets). One thread at a time.

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "tun/route_mirror.hpp"

namespace tun {

struct BypassCounters {
  std::uint64_t sent = 0;         // packets the kernel accepted
  std::uint64_t no_route = 0;     // ENETUNREACH / EHOSTUNREACH
  std::uint64_t too_big = 0;      // EMSGSIZE: larger than the outgoing interface's MTU
  std::uint64_t would_block = 0;  // EAGAIN: socket buffer full
  std::uint64_t errors = 0;       // any other failure, and malformed packets
  int last_errno = 0;             // errno of the latest failure (EINVAL for a malformed packet)
};

class Bypass {
 public:
  enum class SendResult { ok, no_route, too_big, would_block, error };

  static constexpr std::uint32_t kDefaultMark = 9899;
  static constexpr std::uint32_t kDefaultTable = 9899;
  static constexpr std::uint32_t kDefaultRulePriority = 9899;

  // The TUN must exist (its ifindex tells which routes to leave out). mark must not be 0;
  // table must not be 0, 253 (default), 254 (main) or 255 (local); rule_priority must be
  // 1..32765 (before main's rule at 32766, or the rule would never be reached).
  // Builds T, adds the rules, opens the raw sockets; throws std::runtime_error "bypass: <what
  // failed>: <why>" (having undone what it did) if any of that fails.
  Bypass(const std::string& tun_name, std::uint32_t mark = kDefaultMark,
         std::uint32_t table = kDefaultTable, std::uint32_t rule_priority = kDefaultRulePriority);
  // Closes the sockets, removes the rules, then every route of T. Never throws.
  ~Bypass();
  Bypass(const Bypass&) = delete;
  Bypass& operator=(const Bypass&) = delete;

  // Sends one whole IPv4 or IPv6 packet (the version nibble says which) to its destination
  // address through T. Never blocks or throws; every outcome is counted in counters().
  // error with last_errno EINVAL: not a packet (its length fields disagree with its size).
  // too_big: larger than the route's MTU; raw sockets never fragment, whatever the DF bit
  // (the caller answers with ICMP "fragmentation needed" / "packet too big"). A jumbogram
  // (IPv6 payload length 0) counts as malformed.
  SendResult send(std::span<const std::uint8_t> ip_packet);

  // Sets SO_MARK on a socket (needs CAP_NET_ADMIN); throws std::runtime_error if refused.
  static void mark_socket(int fd, std::uint32_t mark);
  std::uint32_t mark() const { return mark_; }
  std::uint32_t table() const { return mirror_->table(); }

  // Route notifications: watch fd() for readability and call on_readable() (never throws).
  int fd() const { return mirror_->fd(); }
  void on_readable() { mirror_->on_readable(); }
  // Re-reads main and T and applies the difference now; throws if the tables cannot be read.
  void resync() { mirror_->resync(); }

  const BypassCounters& counters() const { return counters_; }
  const RouteMirrorStats& route_stats() const { return mirror_->stats(); }
  // Routes of main not copied into T in the latest sync (kernel refused, or not copyable).
  std::size_t refused_routes() const { return mirror_->stats().refused; }

 private:
  SendResult fail(SendResult result, int error, std::uint64_t& counter);

  std::uint32_t mark_;
  std::unique_ptr<RouteMirror> mirror_;
  int raw4_ = -1, raw6_ = -1;  // raw6_ stays -1 on a host without IPv6
  BypassCounters counters_;
};

}  // namespace tun
