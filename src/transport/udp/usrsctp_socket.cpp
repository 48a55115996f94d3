// UsrsctpTransport, part 6: the usrsctp socket of a pool slot, opened with our options (SACKs,
// buffers, retransmission timeouts, path MTU, events), bound and connected to the peer's port of
// the slot (AF_CONN: the Link is the address), and closed abortively when the association is
// gone, so that the port is free for the next one.

#include "src/transport/udp/usrsctp_state.hpp"
#include "src/transport/udp/usrsctp_transport.hpp"

#include <cerrno>
#include <cstring>

#include <sys/socket.h>

#include "src/base/log.hpp"

namespace transport::udp {

namespace {

using namespace detail;

template <class T>
void set_option(UsrsctpSocket* sock, int level, int name, const T& value, const char* what) {
  if (usrsctp_setsockopt(sock, level, name, &value, sizeof value) != 0)
    LOG_WARN("usrsctp: setting %s failed: %s", what, std::strerror(errno));
}

}  // namespace

void UsrsctpTransport::log_socket_failure(Link& link, const char* call) {
  // A socket that cannot open fails at every attempt, which the peer's INITs can make frequent
  // (connects_on_peer_init): logged within the slot's limit of lines.
  int error = errno;
  if (std::uint64_t unlogged = 0; AssocPool::may_log_change(link, Time::now(), unlogged))
    LOG_ERROR(
        "peer %s: slot %u: %s failed: %s (%llu more of this slot's lines not logged since the "
        "last)",
        peers_[link.peer].name.c_str(), link.slot, call, std::strerror(error),
        static_cast<unsigned long long>(unlogged));
}

void UsrsctpTransport::open_socket(Link& link) {
  close_socket(link);
  link.tsn_seen = false;  // a new association numbers its chunks afresh
  link.inflight = InflightCap{};
  link.delivered = DeliveryMeter{};
  link.delivery_rate_seen = 0;
  link.acked = 0;
  link.sent_at_open = link.sent_bytes;
  link.max_cwnd = 0;
  link.sock = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, nullptr, nullptr, 0, nullptr);
  if (!link.sock) {
    log_socket_failure(link, "usrsctp_socket");
    schedule_reconnect(link);
    return;
  }
  usrsctp_set_non_blocking(link.sock, 1);
  usrsctp_set_upcall(link.sock, &upcall, &link);

  int on = 1;
  set_option(link.sock, IPPROTO_SCTP, SCTP_RECVRCVINFO, on, "SCTP_RECVRCVINFO");
  set_option(link.sock, IPPROTO_SCTP, SCTP_NODELAY, on, "SCTP_NODELAY");
  // No burst limit after each SACK: congestion control alone paces (a limit of 4 packets per
  // SACK caps a 64 KB message stream well below the link).
  sctp_assoc_value burst{};
  burst.assoc_id = SCTP_FUTURE_ASSOC;
  burst.assoc_value = 0;
  set_option(link.sock, IPPROTO_SCTP, SCTP_MAX_BURST, burst, "SCTP_MAX_BURST");
  if (options_.congestion_control != 0) {     // before the association exists: it starts with it
    constexpr int kPluggableCc = 0x00001202;  // SCTP_PLUGGABLE_CC (not in usrsctp.h)
    sctp_assoc_value cc{};
    cc.assoc_id = SCTP_FUTURE_ASSOC;
    cc.assoc_value = options_.congestion_control;
    set_option(link.sock, IPPROTO_SCTP, kPluggableCc, cc, "SCTP_PLUGGABLE_CC");
  }
  // A SACK every 4 full packets instead of every 2 (or within 10 ms): half the SACK bytes on
  // the WAN; congestion control counts acknowledged bytes (up to L packets per SACK, set above),
  // so it grows as fast.
  sctp_sack_info sack{};
  sack.sack_assoc_id = SCTP_FUTURE_ASSOC;
  sack.sack_delay = 10;
  sack.sack_freq = kSackEvery;
  set_option(link.sock, IPPROTO_SCTP, SCTP_DELAYED_SACK, sack, "SCTP_DELAYED_SACK");
  set_option(link.sock, SOL_SOCKET, SO_SNDBUF, options_.socket_buffer, "SO_SNDBUF");
  set_option(link.sock, SOL_SOCKET, SO_RCVBUF, options_.socket_buffer, "SO_RCVBUF");
  linger abortive{1, 0};  // close() aborts at once, so the port is free for the next socket
  set_option(link.sock, SOL_SOCKET, SO_LINGER, abortive, "SO_LINGER");
  for (std::uint16_t type : {SCTP_ASSOC_CHANGE, SCTP_PEER_ADDR_CHANGE, SCTP_REMOTE_ERROR,
                             SCTP_SHUTDOWN_EVENT, SCTP_SEND_FAILED_EVENT}) {
    sctp_event event{};
    event.se_assoc_id = SCTP_FUTURE_ASSOC;
    event.se_type = type;
    event.se_on = 1;
    set_option(link.sock, IPPROTO_SCTP, SCTP_EVENT, event, "SCTP_EVENT");
  }
  sctp_initmsg init{};
  init.sinit_num_ostreams = options_.streams;
  init.sinit_max_instreams = options_.streams;
  init.sinit_max_attempts = static_cast<std::uint16_t>(options_.max_init_attempts);
  init.sinit_max_init_timeo = static_cast<std::uint16_t>(options_.rto_max_ms);
  set_option(link.sock, IPPROTO_SCTP, SCTP_INITMSG, init, "SCTP_INITMSG");
  sctp_rtoinfo rto{};
  rto.srto_initial = options_.rto_initial_ms;
  rto.srto_min = options_.rto_min_ms;
  rto.srto_max = options_.rto_max_ms;
  set_option(link.sock, IPPROTO_SCTP, SCTP_RTOINFO, rto, "SCTP_RTOINFO");
  sctp_paddrparams params{};
  params.spp_assoc_id = SCTP_FUTURE_ASSOC;
  params.spp_hbinterval = options_.heartbeat_ms;
  // The peer's path MTU (transport_usrsctp_pmtu.cpp), less the WAN IP and UDP headers and the
  // 12 bytes usrsctp's packets may exceed spp_pathmtu by (pmtu.hpp): no datagram exceeds it.
  params.spp_pathmtu = link.p->pmtu.sctp_pathmtu();
  params.spp_flags = SPP_HB_ENABLE | SPP_PMTUD_DISABLE;
  set_option(link.sock, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, params, "SCTP_PEER_ADDR_PARAMS");

  sockaddr_conn addr{};
  addr.sconn_family = AF_CONN;
  addr.sconn_port = htons(link.port);
  addr.sconn_addr = link.conn_addr;
  if (usrsctp_bind(link.sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    log_socket_failure(link, "usrsctp_bind");
    close_socket(link);
    schedule_reconnect(link);
    return;
  }
  if (usrsctp_connect(link.sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 &&
      errno != EINPROGRESS) {
    log_socket_failure(link, "usrsctp_connect");
    close_socket(link);
    schedule_reconnect(link);
    return;
  }
  pool_.transition(link, SlotEvent::connect);
  LOG_DEBUG("peer %s: slot %u connecting to %s (SCTP port %u)", peers_[link.peer].name.c_str(),
            link.slot,
            link.p->paths.empty() ? "(address not known yet)"
                                  : link.p->paths[link.p->primary].remote.to_string().c_str(),
            link.port);
}

void UsrsctpTransport::close_socket(Link& link) {
  if (!link.sock) return;
  usrsctp_set_upcall(link.sock, nullptr, nullptr);
  usrsctp_close(link.sock);
  link.sock = nullptr;
  link.closing = false;
  switch (link.machine.state()) {
    case SlotState::draining:
      pool_.transition(link, SlotEvent::socket_closed);
      break;
    case SlotState::connecting:
    case SlotState::ready:
      pool_.transition(link, SlotEvent::lost);
      break;
    case SlotState::closed:
      break;
  }
  link.rx.clear();
}

}  // namespace transport::udp
