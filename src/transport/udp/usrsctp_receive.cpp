// UsrsctpTransport, part 7: what arrives. Datagrams from the UDP sockets, told apart (path
// probes, FEC, SCTP packets); SCTP packets checked and fed to the association of their slot (or,
// from an unknown address, to the one their verification tag names); and the messages and
// notifications read from a slot's usrsctp socket.

#include "src/transport/udp/usrsctp_state.hpp"
#include "src/transport/udp/usrsctp_transport.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <sys/socket.h>

#include "src/base/crc32c.hpp"
#include "src/base/log.hpp"

namespace transport::udp {

using namespace detail;

namespace {
// What becomes of an SCTP packet, with a known verification tag, from an address that is no path:
//   fed       every chunk a HEARTBEAT (4), HEARTBEAT ACK (5) or PAD (132), which change nothing
//             (an ACK is checked against the nonce of our HEARTBEAT): fed to the association, and
//             the address nominated (challenged: the peer may have moved);
//   held      also data and acknowledgements (DATA 0, SACK 3, NR-SACK 16, I-DATA 64): the address
//             is nominated, the packet dropped until it is proven (one round trip; SCTP sends
//             again what was dropped). Whoever saw the association's tags and TSNs could end it
//             with them (an empty DATA chunk, a SACK of a TSN never sent: protocol violations;
//             DATA at the TSN the peer sends next, acknowledged to a peer that never sent it) or
//             lose data silently (a SACK of chunks the peer never received);
//   dropped   any other chunk (ABORT, SHUTDOWN*, INIT*, COOKIE*, ERROR, ASCONF*, FORWARD TSN,
//             RE-CONFIG, unknown ones), a chunk that runs past the packet, or no chunk at all.
enum class Unproven { fed, held, dropped };
Unproven judge_unproven(std::span<const std::uint8_t> packet) {
  std::size_t chunks = 0;
  bool liveness = true, data = true;
  bool whole = for_each_chunk(packet, [&](std::uint8_t type, std::span<const std::uint8_t>) {
    ++chunks;
    bool probe = type == 4 || type == 5 || type == 132;
    liveness = liveness && probe;
    data = data && (probe || type == 0 || type == 3 || type == 16 || type == 64);
  });
  if (!whole || chunks == 0 || !data) return Unproven::dropped;
  return liveness ? Unproven::fed : Unproven::held;
}
}  // namespace

void UsrsctpTransport::on_udp_readable(std::size_t socket_index) {
  sockets_[socket_index]->receive(
      [&](const base::Endpoint& from, std::span<const std::uint8_t> bytes) {
        on_datagram(socket_index, from, bytes);
      });
  service();
}

void UsrsctpTransport::on_datagram(std::size_t socket_index, const base::Endpoint& from,
                                   std::span<const std::uint8_t> bytes) {
  if (is_probe(bytes)) {
    on_probe(socket_index, from, bytes);
    return;
  }
  ++stats_.datagrams_in;
  stats_.datagram_bytes_in += bytes.size();
  if (fec::wire::kind_of(bytes)) {
    on_fec(socket_index, from, bytes);
    return;
  }
  on_sctp_packet(socket_index, from, bytes);
}

void UsrsctpTransport::on_sctp_packet(std::size_t socket_index, const base::Endpoint& from,
                                      std::span<const std::uint8_t> bytes) {
  if (bytes.size() < kSctpCommonHeader) {
    ++stats_.datagrams_malformed;
    return;
  }
  if (!base::crc32c::verify_sctp_checksum(bytes)) {
    ++stats_.datagrams_bad_checksum;
    return;
  }
  // From any of the peer's addresses, on any of our sockets.
  Peer* peer = find_peer_by_address(from);
  if (!peer) {
    // From an address that is no path: SCTP packets carrying one of our verification tags name
    // their association, and the address is challenged (transport_usrsctp_paths.cpp); anything
    // else is dropped.
    Link* link = bytes.size() >= 8 ? find_link_by_tag(base::load_be32(bytes.data() + 4)) : nullptr;
    if (!link || !link->p->key || !link->sock) {
      note_unknown_source(from);
      return;
    }
    // Until the address is proven, nothing that can change the association: whoever saw a
    // verification tag could send it (judge_unproven). Data and acknowledgements still nominate
    // the address, so a peer that moved is challenged at once.
    Unproven judged = judge_unproven(bytes);
    if (judged == Unproven::dropped) {
      ++stats_.datagrams_unproven_control;
      return;
    }
    nominate(*link, socket_index, from);
    if (judged == Unproven::held) {
      ++stats_.datagrams_unproven_control;
      return;
    }
    ++stats_.datagrams_provisional;
    usrsctp_conninput(link->conn_addr, bytes.data(), bytes.size(), 0);
    return;
  }
  std::optional<std::size_t> path = peer->path_of(socket_index, from);
  if (path) {
    ++peer->paths[*path].datagrams_in;
    peer->paths[*path].bytes_in += bytes.size();
  }
  // The slot: the SCTP destination port, bytes 2-3 of the common header.
  unsigned port = base::load_be16(bytes.data() + 2);
  if (port < options_.sctp_port || port - options_.sctp_port >= peer->slots.size()) {
    ++stats_.datagrams_unknown_slot;
    if (!peer->foreign_slot_logged) {
      peer->foreign_slot_logged = true;
      LOG_WARN(
          "peer %s: datagram for SCTP port %u, outside our pool (ports %u-%zu): is the "
          "peer's pool larger? ignored",
          peers_[peer->id].name.c_str(), port, unsigned{options_.sctp_port},
          options_.sctp_port + peer->slots.size() - 1);
    }
    return;
  }
  Link& link = *peer->slots[port - options_.sctp_port];
  // The peer's INIT while this slot waits out its backoff (socket closed): connect now, so that
  // the INIT meets ours (an INIT collision, which SCTP resolves into one association). Without
  // this, two gateways whose backoff timers are out of phase answer each other's INIT with an
  // ABORT forever, each one's INIT arriving while the other's slot is closed.
  if (!link.sock && bytes.size() >= kSctpCommonHeader + 4 &&
      bytes[kSctpCommonHeader] == kChunkInit && pool_.held_for(link, Time::now()) == 0) {
    link.reconnect_timer->stop();
    ++stats_.connects_on_peer_init;
    open_socket(link);
  }
  if (path && peer->monitor) note_copies(link, *path, bytes);  // redundant flows: the peer's copies
  usrsctp_conninput(link.conn_addr, bytes.data(), bytes.size(), 0);
}

void UsrsctpTransport::read_messages(Link& link) {
  for (int i = 0; i < 4096 && link.sock; ++i) {
    std::span<std::uint8_t> room = link.rx.room();
    sctp_rcvinfo info{};
    socklen_t info_len = sizeof info;
    unsigned int info_type = 0;
    int flags = 0;
    sockaddr_conn from{};
    socklen_t from_len = sizeof from;
    ssize_t n =
        usrsctp_recvv(link.sock, room.data(), room.size(), reinterpret_cast<sockaddr*>(&from),
                      &from_len, &info, &info_len, &info_type, &flags);
    if (n < 0) {
      if (errno == EWOULDBLOCK || errno == EAGAIN) return;
      link_down(link, std::strerror(errno));
      return;
    }
    if (n == 0) {
      link_down(link, "closed by peer");
      return;
    }
    MessageBuffer::Part part = link.rx.add(static_cast<std::size_t>(n), flags & MSG_EOR);
    if (part == MessageBuffer::Part::more) continue;
    tun::PacketBuf& msg = link.rx.msg();
    if (flags & MSG_NOTIFICATION) {
      handle_notification(link, msg.data());
    } else if (part == MessageBuffer::Part::dropped) {
      ++stats_.datagrams_malformed;
    } else if (link.assoc && events_) {
      link.count_received(msg.size());
      events_->on_message(link.assoc, info.rcv_sid, msg);
    }
    link.rx.clear();
  }
  if (link.sock) upcall(link.sock, &link, 0);  // more may be waiting: come back next round
}

void UsrsctpTransport::handle_notification(Link& link, std::span<const std::uint8_t> bytes) {
  sctp_notification note{};
  if (bytes.size() < sizeof note.sn_header) return;
  std::memcpy(&note, bytes.data(), std::min(bytes.size(), sizeof note));
  if (note.sn_header.sn_type == SCTP_SEND_FAILED_EVENT) ++stats_.send_errors;
  if (note.sn_header.sn_type == SCTP_SHUTDOWN_EVENT) pool_.shutdown(link);
  if (note.sn_header.sn_type != SCTP_ASSOC_CHANGE) return;
  const sctp_assoc_change& change = note.sn_assoc_change;
  AssocChange what = assoc_change(
      {SCTP_COMM_UP, SCTP_RESTART, SCTP_COMM_LOST, SCTP_SHUTDOWN_COMP, SCTP_CANT_STR_ASSOC},
      change.sac_state);
  if (is_up(what)) {
    pool_.up(link, change.sac_inbound_streams, change.sac_outbound_streams,
             what == AssocChange::restart ? "restarted by peer" : "up",
             " via " + path_text(*link.p, link.slot), Time::now());
  } else if (const char* why = down_reason(what)) {
    link_down(link, why);
  }
}

}  // namespace transport::udp
