// UsrsctpTransport, part 4: FEC below SCTP (doc/PROTOCOL.md "FEC"; the pieces: fec_wire,
// fec_sender, fec_receiver, fec_controller).
//
// Both ends offer it in their HELLO ([[peer]] fec, with a key); once agreed, each side decides
// for the datagrams it sends, path by path:
//  - Until the path loses something, nothing changes: plain SCTP packets. conn_output counts
//    the DATA chunks SCTP sends again; the first one (fec::Controller) starts framing.
//  - Framing: each datagram gets an 8-byte number, and blocks of them get parity datagrams, as
//    many as the loss the peer reports calls for (within [transport] fec_max_overhead). The
//    room for the header and the parity overhead is kept in the peer's SCTP packets from the
//    moment FEC is agreed (32 bytes: about 2 % of a full packet).
//  - The receiver rebuilds what is missing from the parity and releases datagrams to usrsctp in
//    order: one that arrives after a gap waits until the gap is rebuilt or given up (a few ms),
//    so usrsctp sees no gap and SCTP neither retransmits nor halves its window. Every 100 ms
//    it reports to the sender what it found missing (authenticated, like the parity).
// FEC datagrams from an address that is no path are not FEC'd: their SCTP packet goes the way
// of any packet from an unknown address (the verification-tag check and address learning).

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "src/base/crc32c.hpp"
#include "src/base/log.hpp"
#include "src/fec/wire.hpp"
#include "src/transport/udp/usrsctp_state.hpp"

namespace transport::udp {

using namespace detail;

namespace {
// A block of at most this many data datagrams: the larger, the less parity a given loss needs
// (fec_controller.hpp); at 1 Gbit/s 64 datagrams take 0.7 ms, about what a gap may wait.
constexpr std::size_t kBlock = 64;
constexpr double kBlockAge = 0.005;  // a block still open this long gets its parity
constexpr double kHold = 0.010;      // how long a datagram after a gap may wait for its rebuild
constexpr double kRestartDelay = 0.5, kRestartGap = 2;  // congestion control restarts
}  // namespace

void UsrsctpTransport::set_fec(PeerId id, bool both_offer) {
  if (id >= peer_state_.size()) return;
  Peer& peer = *peer_state_[id];
  bool agreed = both_offer && peer.fec_offered;
  if (agreed == peer.fec_agreed) return;
  peer.fec_agreed = agreed;
  LOG_INFO("peer %s: FEC %s", peers_[id].name.c_str(),
           agreed ? "agreed: parity is added on a path once it loses datagrams"
                  : "not offered by the peer: its datagrams stay plain");
  // The room for FEC's header and parity, kept in the SCTP packets from now on, while the
  // association is new: lowering the MTU under a full window later would make usrsctp send
  // every chunk in flight again (as IP fragments: they were cut for the larger MTU).
  transport::udp::pmtu::Budget b = peer.pmtu;
  b.reserve = agreed ? static_cast<int>(fec::wire::kParityOverhead) : 0;
  if (b.reserve != peer.pmtu.reserve) apply_path_mtu(peer, b, "FEC");
}

UsrsctpTransport::PathFec* UsrsctpTransport::path_fec(Peer& peer, std::size_t i) {
  if (!peer.fec_offered || i >= peer.paths.size()) return nullptr;
  Peer::Path& path = peer.paths[i];
  if (!path.fec) {
    fec::SenderOptions send;
    send.max_data = kBlock;
    send.max_block_age = kBlockAge;
    fec::ReceiverOptions receive;
    receive.hold = kHold;
    fec::ControllerOptions control;
    control.block = kBlock;
    control.max_overhead = options_.fec_max_overhead;
    path.fec = std::make_shared<PathFec>(peer.fec_key, send, receive, control);
  }
  return path.fec.get();
}

bool UsrsctpTransport::send_framed(Peer& peer, std::size_t i,
                                   std::span<const std::uint8_t> packet) {
  if (!peer.fec_agreed || i >= peer.paths.size()) return false;
  Peer::Path& path = peer.paths[i];
  if (!path.fec || !path.fec->controller.framing()) return false;
  // A packet cut for the MTU before the reserve (in flight when framing began) goes out plain:
  // its parity would not fit the path.
  if (packet.size() + fec::wire::kParityOverhead > static_cast<std::size_t>(peer.pmtu.payload))
    return false;
  DatagramSocket& socket = *sockets_[path.socket];
  std::uint8_t header[fec::wire::kDataHeader] = {};
  std::span<std::uint8_t> datagram = socket.queue(path.remote, header, packet);
  if (datagram.empty()) return true;  // refused (counted by the socket)
  std::span<std::uint8_t> body = datagram.subspan(fec::wire::kDataHeader);
  base::crc32c::set_sctp_checksum(body);  // before the parity takes its copy
  parity_out_.clear();
  parity_len_.clear();
  path.fec->sender.add(body, datagram.data(), mono_now(),
                       [this](std::span<const std::uint8_t> parity) {
                         parity_out_.insert(parity_out_.end(), parity.begin(), parity.end());
                         parity_len_.push_back(parity.size());
                       });
  ++path.datagrams_out;
  path.bytes_out += datagram.size();
  ++stats_.datagrams_out;
  ++stats_.fec_data_out;
  stats_.datagram_bytes_out += datagram.size();
  stats_.largest_datagram_out =
      std::max<std::uint64_t>(stats_.largest_datagram_out, datagram.size());
  std::size_t off = 0;
  for (std::size_t len : parity_len_) {
    socket.queue(path.remote, {parity_out_.data() + off, len});
    off += len;
    ++stats_.fec_parity_out;
    ++stats_.datagrams_out;
    stats_.datagram_bytes_out += len;
    stats_.largest_datagram_out = std::max<std::uint64_t>(stats_.largest_datagram_out, len);
  }
  return true;
}

void UsrsctpTransport::on_fec(std::size_t socket_index, const base::Endpoint& from,
                              std::span<const std::uint8_t> bytes) {
  auto kind = fec::wire::kind_of(bytes);
  Peer* peer = find_peer_by_address(from);
  std::optional<std::size_t> i = peer ? peer->path_of(socket_index, from) : std::nullopt;
  PathFec* state = i ? path_fec(*peer, *i) : nullptr;
  if (!state) {
    // Not one of our FEC paths: the SCTP packet inside a data datagram is judged like any
    // other (a peer that moved is found by its verification tags); the rest is dropped.
    if (kind == fec::wire::Kind::data || kind == fec::wire::Kind::data_unprotected) {
      if (auto data = fec::wire::parse_data(bytes)) {
        on_sctp_packet(socket_index, from, data->packet);
        return;
      }
    }
    if (!peer)
      note_unknown_source(from);
    else
      ++stats_.fec_malformed;
    return;
  }
  double now = mono_now();
  auto deliver = [&](std::span<const std::uint8_t> packet) {
    on_sctp_packet(socket_index, from, packet);
  };
  const fec::Receiver::Stats before = state->receiver.stats();
  switch (*kind) {
    case fec::wire::Kind::data:
    case fec::wire::Kind::data_unprotected:
      state->receiver.on_data(bytes, now, deliver);
      break;
    case fec::wire::Kind::parity:
      ++stats_.fec_parity_in;
      state->receiver.on_parity(bytes, now, deliver);
      break;
    case fec::wire::Kind::report: {
      auto report = fec::wire::parse_report(bytes);
      if (!report || !fec::wire::verify(bytes, peer->fec_key)) {
        ++stats_.fec_forged;
        return;
      }
      ++stats_.fec_reports_in;
      ++state->reports_in;
      state->last_report = *report;
      bool had_parity = state->controller.redundancy() > 0;
      state->controller.on_report(report->received, report->lost, now);
      state->sender.set_parity_table(state->controller.parity_table());
      if (!had_parity && state->controller.redundancy() > 0) schedule_restart(*state, now);
      return;
    }
  }
  const fec::Receiver::Stats& after = state->receiver.stats();
  stats_.fec_rebuilt += after.rebuilt - before.rebuilt;
  stats_.fec_unrecovered += after.unrecovered - before.unrecovered;
  stats_.fec_forged += after.parity_bad - before.parity_bad;
  stats_.fec_malformed += after.malformed - before.malformed;
}

// Every 100 ms: the controllers learn what SCTP retransmitted (paths not framing yet), framing
// starts where it must (the peer's packets get smaller), and receivers report back.
void UsrsctpTransport::on_fec_tick() {
  double now = mono_now();
  for (auto& peer_ptr : peer_state_) {
    Peer& peer = *peer_ptr;
    if (!peer.fec_offered || peer.paths.empty()) continue;
    for (std::size_t i = 0; peer.fec_agreed && i < peer.paths.size(); ++i) {
      const std::uint64_t sent = peer.paths[i].data_chunks_out;
      const std::uint64_t again = peer.paths[i].data_chunks_retransmitted;
      if (sent == 0) continue;  // never carried data
      PathFec* state = path_fec(peer, i);
      bool was = state->controller.framing();
      state->controller.on_sctp(sent, again, now);
      // SCTP resent chunks although parity protects the path: a loss parity missed halved a
      // window, which grows back by one packet per round trip. Restart it as when parity began
      // (checked against the peer's reports first).
      if (was && state->controller.redundancy() > 0 && again > state->retransmitted_seen)
        schedule_restart(*state, now);
      state->retransmitted_seen = again;
      if (!was && state->controller.framing()) {
        state->sender.set_parity_table(state->controller.parity_table());
        if (state->controller.redundancy() > 0) schedule_restart(*state, now);

        LOG_INFO(
            "peer %s: FEC on for path %s: SCTP retransmitted %llu of %llu chunks lately; "
            "datagrams numbered, parity as the loss calls for (at most %.0f%%)",
            peers_[peer.id].name.c_str(), peer.paths[i].remote.to_string().c_str(),
            static_cast<unsigned long long>(again), static_cast<unsigned long long>(sent),
            options_.fec_max_overhead * 100);
      }
    }
    for (Peer::Path& path : peer.paths) {
      if (!path.fec) continue;
      if (path.fec->restart_at >= 0 && now >= path.fec->restart_at) {
        // Only where parity did repair the losses since: random ones (fec::restart_verdict).
        const fec::wire::Report& a = path.fec->restart_report;
        const fec::wire::Report& b = path.fec->last_report;
        std::uint32_t lost = b.lost - a.lost, left = b.unrecovered - a.unrecovered;
        fec::RestartEvidence evidence{b.received - a.received, lost, left,
                                      now - path.fec->restart_scheduled};
        fec::RestartVerdict verdict = fec::restart_verdict(evidence);
        if (verdict == fec::RestartVerdict::wait) {
          path.fec->restart_at = now + kRestartDelay;
        } else {
          path.fec->restart_at = -1;
          path.fec->restarted_at = now;
          if (verdict == fec::RestartVerdict::restart)
            restart_congestion_control(peer);
          else
            LOG_DEBUG(
                "peer %s: no congestion control restart: parity repaired %u of %u losses in %u "
                "datagrams",
                peers_[peer.id].name.c_str(), lost - left, lost, evidence.received + lost);
        }
      }
      const fec::Receiver::Stats& rs = path.fec->receiver.stats();
      if (rs.received == 0 || (path.fec->reported && rs.received == path.fec->reported_received))
        continue;
      path.fec->reported = true;
      path.fec->reported_received = rs.received;
      auto report = path.fec->receiver.report();
      if (sockets_[path.socket]->send_now(path.remote, report) == 0) ++path.fec->reports_out;
    }
  }
}

// The losses that made parity start were random ones (parity repairs them from now on), yet
// SCTP answered each by halving its window and lowering its slow-start threshold, from where it
// grows by one packet per round trip: at 20 ms, a minute to fill a gigabit path. Setting the
// congestion control module again starts it afresh (usrsctp: initial window, threshold = the
// peer's window), so the window grows back in a few round trips, up to the cap (inflight_cap).
// Half a second after parity starts on a path or after a loss parity did not repair (the
// packets lost before are dealt with by then), at most every 2 s (a loss within 2 s of the last
// restart is restarted 2 s after it, not forgotten: Reno would otherwise grow the halved
// window by a packet per round trip for the rest of the transfer), only if the peer's reports
// show that parity repaired the losses since the scheduling (fec::restart_verdict; while they
// are too few to tell, the check is repeated every half second), and only for associations
// that resent chunks since their last restart (the others' windows were not cut).
void UsrsctpTransport::schedule_restart(PathFec& state, double now) {
  if (state.restart_at >= 0) return;  // one is due already
  state.restart_at = now + kRestartDelay;
  if (state.restarted_at >= 0)
    state.restart_at = std::max(state.restart_at, state.restarted_at + kRestartGap);
  state.restart_report = state.last_report;
  state.restart_scheduled = now;
}

void UsrsctpTransport::restart_congestion_control(Peer& peer) {
  for (Link* link : peer.slots) {
    if (link->data_chunks_retransmitted == link->retransmitted_at_restart) continue;  // not cut
    link->retransmitted_at_restart = link->data_chunks_retransmitted;
    restart_window(*link);
  }
}

void UsrsctpTransport::fec_before_block() {
  double now = mono_now();
  std::optional<double> next;
  auto earliest = [&](std::optional<double> t) {
    if (t && (!next || *t < *next)) next = t;
  };
  for (auto& peer_ptr : peer_state_) {
    Peer& peer = *peer_ptr;
    for (Peer::Path& path : peer.paths) {
      if (!path.fec) continue;
      DatagramSocket& socket = *sockets_[path.socket];
      path.fec->sender.flush(now, false, [&](std::span<const std::uint8_t> parity) {
        socket.queue(path.remote, parity);
        ++stats_.fec_parity_out;
        ++stats_.datagrams_out;
        stats_.datagram_bytes_out += parity.size();
      });
      earliest(path.fec->sender.next_deadline());
      earliest(path.fec->receiver.next_deadline());
    }
  }
  if (next) fec_timer_.start(std::max(0.0, *next - now));
}

void UsrsctpTransport::on_fec_timer() {
  double now = mono_now();
  for (auto& peer_ptr : peer_state_) {
    Peer& peer = *peer_ptr;
    for (std::size_t i = 0; i < peer.paths.size(); ++i) {
      Peer::Path& path = peer.paths[i];
      if (!path.fec) continue;
      const fec::Receiver::Stats before = path.fec->receiver.stats();
      path.fec->receiver.on_timer(now, [&](std::span<const std::uint8_t> packet) {
        on_sctp_packet(path.socket, path.remote, packet);
      });
      stats_.fec_unrecovered += path.fec->receiver.stats().unrecovered - before.unrecovered;
    }
  }
  service();  // what usrsctp answered; before_block flushes the sockets and re-arms the timer
}

}  // namespace transport::udp
