// UsrsctpTransport, part 3: the path MTU (arithmetic in pmtu.hpp).
//
// `[transport] path_mtu` is an upper bound, never an assumption: at start, every 2 s, and at once
// after the kernel refused a datagram as too big, each peer's path MTU is the smallest of
// path_mtu and the kernel's MTU towards each of its paths that may carry its packets (up, or the
// primary). The kernel's MTU is IP_MTU / IPV6_MTU of a throwaway UDP socket connected to the
// path's remote (bound to its local address, with the WAN sockets' mark, so it is routed as our
// datagrams are): the route's MTU, or the PMTU an ICMP "fragmentation needed" / "packet too big"
// put in the kernel's cache. When it changes, the peer's associations get it (usrsctp
// SCTP_PEER_ADDR_PARAMS, checked with SCTP_STATUS), and so do their reconnects (open_socket).
// It rises again when the kernel's PMTU entry expires (net.ipv4.route.mtu_expires, 10 min),
// never above path_mtu.
//
// The WAN sockets never fragment (IP_PMTUDISC_DO, udp_socket.cpp): a datagram larger than the
// PMTU the kernel knows is refused with EMSGSIZE -- the first one after the ICMP arrived --
// which triggers the re-check here. What cannot be made smaller: DATA chunks usrsctp cut for the
// old MTU before it dropped (in flight or queued; SCTP cannot cut a chunk again). usrsctp marks
// them "may fragment" when the MTU drops and resends them with set_df = 0; they go out as IP
// fragments (send_fragmentable, counted in datagrams_fragmented) -- a bounded burst, once per drop.
//
// Not handled: a path that drops big packets without an ICMP (a "black hole", ICMP filtered):
// the kernel learns nothing, so neither do we. That needs probing with padded packets
// (PLPMTUD, RFC 8899); set path_mtu by hand for such a path.
//
// usrsctp (one-to-one sockets): SCTP_PEER_ADDR_PARAMS on a socket with an association applies to
// that association whatever spp_assoc_id says, and needs spp_address of family AF_CONN (a null
// sconn_addr: every destination), else EAFNOSUPPORT. Lowering takes effect at once (and resends
// chunks too big for it); raising lets packets grow, but messages keep being cut at the lowest
// MTU the association has had (its smallest_mtu) until it is re-established.

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "src/base/crc32c.hpp"
#include "src/base/log.hpp"
#include "src/transport/udp/usrsctp_state.hpp"

namespace transport::udp {

using namespace detail;

namespace {
constexpr double kMinRecheckGap = 0.05;  // seconds between re-checks triggered by refusals
}  // namespace

int UsrsctpTransport::config_ip_header() const {
  for (const auto& socket : sockets_) {
    if (socket->local().family() == AF_INET6) return 40;  // any path may be IPv6: fit the worst
  }
  return 20;
}

int UsrsctpTransport::route_mtu(const Peer& peer, std::size_t i) const {
  // 0 without a route now: the path does not limit (it carries nothing either).
  const Peer::Path& path = peer.paths[i];
  return network_->route(path.remote, options_.fwmark, &sockets_[path.socket]->local()).mtu;
}

void UsrsctpTransport::check_path_mtu(const char* why) {
  bool first = pmtu_checked_at_ < 0;  // at start, before the first connect
  pmtu_checked_at_ = mono_now();
  too_big_seen_ = 0;
  for (const auto& socket : sockets_) too_big_seen_ += socket->stats().too_big;
  int config_header = config_ip_header();
  std::vector<transport::udp::pmtu::PathSample> samples;
  for (auto& peer : peer_state_) {
    samples.clear();
    for (std::size_t i = 0; i < peer->paths.size(); ++i) {
      bool counts = i == peer->primary || !peer->monitor || i >= peer->monitor->size() ||
                    peer->monitor->path(i).state == PathState::up;
      samples.push_back({peer->paths[i].remote.family(), counts ? route_mtu(*peer, i) : 0, counts});
    }
    transport::udp::pmtu::Budget b =
        transport::udp::pmtu::compute(options_.wan_mtu, config_header, samples);
    b.reserve = peer->pmtu.reserve;
    if (b.payload != peer->pmtu.payload)  // initially path_mtu's (constructor)
      apply_path_mtu(*peer, b, first ? nullptr : why);
    else
      peer->pmtu = b;  // the same size, perhaps another path's reason
  }
}

void UsrsctpTransport::apply_path_mtu(Peer& peer, const transport::udp::pmtu::Budget& b,
                                      const char* why) {
  const std::string& name = peers_[peer.id].name;
  bool first = why == nullptr;                        // at start: sized before the first connect
  bool mtu_changed = b.payload != peer.pmtu.payload;  // else only the FEC reserve changed
  peer.pmtu = b;
  if (mtu_changed) peer.largest_at_pmtu = 0;
  if (!first && mtu_changed) ++stats_.path_mtu_changes;
  sctp_paddrparams params{};
  params.spp_assoc_id = SCTP_FUTURE_ASSOC;  // one-to-one: the socket's association, if any
  params.spp_address.ss_family = AF_CONN;
  params.spp_pathmtu = b.sctp_pathmtu();
  params.spp_flags = SPP_PMTUD_DISABLE;
  for (Link* link : peer.slots) {
    if (!link->sock) continue;  // closed: open_socket sizes the next one
    if (usrsctp_setsockopt(link->sock, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &params,
                           sizeof params) != 0) {
      LOG_WARN("peer %s: slot %u: setting the path MTU failed: %s", name.c_str(), link->slot,
               std::strerror(errno));
      continue;
    }
    if (!link->machine.ready()) continue;
    sctp_status status{};
    socklen_t len = sizeof status;
    if (usrsctp_getsockopt(link->sock, IPPROTO_SCTP, SCTP_STATUS, &status, &len) == 0 &&
        status.sstat_primary.spinfo_mtu != b.sctp_pathmtu())
      LOG_WARN("peer %s: association %llu: usrsctp kept MTU %u instead of %u", name.c_str(),
               static_cast<unsigned long long>(link->assoc), status.sstat_primary.spinfo_mtu,
               b.sctp_pathmtu());
  }
  std::string reason = "[transport] path_mtu";
  if (b.limiting >= 0) {
    const Peer::Path& path = peer.paths[static_cast<std::size_t>(b.limiting)];
    reason = "route/PMTU to " + path.remote.address_string() + " from " +
             sockets_[path.socket]->local().address_string();
  }
  if (!mtu_changed && !first) {
    LOG_INFO("peer %s: SCTP packets now <= %d bytes, %d of them kept for FEC", name.c_str(),
             b.payload, b.reserve);
    return;
  }
  if (b.reserve)
    LOG_INFO("peer %s: path MTU %d (%s), SCTP packets %s<= %d bytes, %d of them kept for FEC",
             name.c_str(), b.ip_mtu, reason.c_str(), first ? "" : "now ", b.payload, b.reserve);
  else
    LOG_INFO("peer %s: path MTU %d (%s), SCTP packets %s<= %d bytes", name.c_str(), b.ip_mtu,
             reason.c_str(), first ? "" : "now ", b.payload);
  if (why) LOG_DEBUG("peer %s: path MTU checked: %s", name.c_str(), why);
}

void UsrsctpTransport::after_flush_pmtu() {
  std::uint64_t too_big = 0;
  for (const auto& socket : sockets_) too_big += socket->stats().too_big;
  if (too_big == too_big_seen_) return;
  too_big_seen_ = too_big;
  double delay = transport::udp::pmtu::recheck_delay(pmtu_checked_at_, mono_now(), kMinRecheckGap);
  if (delay <= 0)
    check_path_mtu("the kernel refused a datagram as too big");
  else
    pmtu_recheck_.start(delay);
}

void UsrsctpTransport::send_fragmentable(Peer& peer, std::size_t i,
                                         std::span<const std::uint8_t> packet) {
  Peer::Path& path = peer.paths[i];
  DatagramSocket& socket = *sockets_[path.socket];
  socket.flush();  // in order with what usrsctp sent before
  static thread_local std::vector<std::uint8_t> copy;
  copy.assign(packet.begin(), packet.end());
  base::crc32c::set_sctp_checksum(copy);
  if (socket.send_fragmentable(path.remote, copy) != 0) return;  // counted as a send error
  ++stats_.datagrams_fragmented;
  ++path.datagrams_out;
  path.bytes_out += packet.size();
  ++stats_.datagrams_out;
  stats_.datagram_bytes_out += packet.size();
  stats_.largest_datagram_out = std::max<std::uint64_t>(stats_.largest_datagram_out, packet.size());
  LOG_DEBUG("peer %s: a %zu-byte SCTP packet cut for a larger MTU sent as IP fragments",
            peers_[peer.id].name.c_str(), packet.size());
}

}  // namespace transport::udp
