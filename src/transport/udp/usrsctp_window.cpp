// UsrsctpTransport, part 5: SCTP's window of each association: what usrsctp reports beyond
// SCTP_STATUS, the cap on the congestion window (inflight_cap.hpp), and congestion control
// started afresh once a recovery from retransmission timeouts is over.

#include "src/transport/udp/usrsctp_state.hpp"
#include "src/transport/udp/usrsctp_transport.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <sys/socket.h>

#include "src/base/log.hpp"

namespace transport::udp {

namespace detail {

std::optional<std::uint64_t> send_buffer_use(UsrsctpSocket* sock) {
  struct {  // struct sctp_sockstat of usrsctp's sctp_uio.h (SCTP_GET_SNDBUF_USE is not exported)
    sctp_assoc_t ss_assoc_id;
    std::uint32_t ss_total_sndbuf;
    std::uint32_t ss_total_recv_buf;
  } use{};
  constexpr int kGetSndbufUse = 0x00001101;
  socklen_t len = sizeof use;
  if (usrsctp_getsockopt(sock, IPPROTO_SCTP, kGetSndbufUse, &use, &len) != 0) return std::nullopt;
  return use.ss_total_sndbuf;
}

// What SCTP_STATUS does not say: the advertised window, the send buffer, the timeouts.
WindowInfo read_window(UsrsctpSocket* sock, WindowInfo w) {
  sctp_assocparams assoc{};
  socklen_t len = sizeof assoc;
  if (usrsctp_getsockopt(sock, IPPROTO_SCTP, SCTP_ASSOCINFO, &assoc, &len) == 0)
    w.local_rwnd = assoc.sasoc_local_rwnd;
  if (auto use = send_buffer_use(sock)) w.send_buffered = *use;
  int sndbuf = 0;
  len = sizeof sndbuf;
  if (usrsctp_getsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) == 0 && sndbuf > 0)
    w.send_buffer = static_cast<std::uint32_t>(sndbuf);
  sctp_timeouts timeouts{};
  len = sizeof timeouts;
  if (usrsctp_getsockopt(sock, IPPROTO_SCTP, SCTP_TIMEOUTS, &timeouts, &len) == 0)
    w.data_timeouts = timeouts.stimo_data;
  return w;
}

}  // namespace detail

namespace {

using namespace detail;

constexpr double kRecoveryQuiet = 1.0;  // s without retransmissions: a recovery is over

}  // namespace

// Starts the association's congestion control afresh: setting its module again gives usrsctp's
// initial window and a slow-start threshold of the peer's window (used after random losses,
// usrsctp_fec.cpp).
void UsrsctpTransport::restart_window(Link& link) {
  constexpr int kPluggableCc = 0x00001202;  // SCTP_PLUGGABLE_CC (not in usrsctp.h)
  if (!link.sock || !link.machine.ready()) return;
  sctp_assoc_value cc{};
  cc.assoc_id = SCTP_FUTURE_ASSOC;
  cc.assoc_value = options_.congestion_control;
  // Setting the module gives every path of the association usrsctp's initial window, which is
  // one value for the whole stack: kRestartWindow for this call only (usrsctp runs on our thread).
  usrsctp_sysctl_set_sctp_initial_cwnd(kRestartWindow);
  int rc = usrsctp_setsockopt(link.sock, IPPROTO_SCTP, kPluggableCc, &cc, sizeof cc);
  usrsctp_sysctl_set_sctp_initial_cwnd(kFirstWindow);
  if (rc != 0) {
    LOG_WARN("peer %s: association %llu: restarting congestion control failed: %s",
             peers_[link.peer].name.c_str(), static_cast<unsigned long long>(link.assoc),
             std::strerror(errno));
    return;
  }
  ++link.window_restarts;
}

// SCTP's window capped at a few bandwidth-delay products (inflight_cap.hpp), every 10 ms.
void UsrsctpTransport::cap_window(Link& link, double now) {
  if (!link.sock || !link.machine.ready()) return;
  sctp_status status{};
  socklen_t len = sizeof status;
  if (usrsctp_getsockopt(link.sock, IPPROTO_SCTP, SCTP_STATUS, &status, &len) != 0) return;
  WindowInfo w = read_window(link.sock, {});
  recover_window(link, w, now);
  double srtt = status.sstat_primary.spinfo_srtt / 1000.0;
  link.cwnd_seen = status.sstat_primary.spinfo_cwnd;
  link.srtt_seen = srtt;
  std::uint64_t into = link.sent_bytes - link.sent_at_open;
  if (into >= w.send_buffered) link.acked = std::max(link.acked, into - w.send_buffered);
  link.delivered.sample(now, link.acked);
  // Over at least two ticks: acknowledgements come in bursts.
  link.delivery_rate_seen = link.delivered.rate(std::max(srtt > 0 ? srtt : 0.01, 0.02));
  SendState send{w.send_buffered, status.sstat_unackdata, status.sstat_fragmentation_point,
                 status.sstat_primary.spinfo_cwnd};
  link.inflight.sample(now, link.acked, srtt, window_limited(send, link.max_cwnd));
  std::uint64_t cap = options_.window_cap ? link.inflight.cap() : 0;
  // Only changes of an eighth or more: each one is a setsockopt.
  std::uint64_t diff = cap > link.max_cwnd ? cap - link.max_cwnd : link.max_cwnd - cap;
  if (diff * 8 < link.max_cwnd || (cap == link.max_cwnd)) return;
  sctp_assoc_value value{};
  value.assoc_id = SCTP_FUTURE_ASSOC;
  value.assoc_value = static_cast<std::uint32_t>(std::min<std::uint64_t>(cap, UINT32_MAX));
  if (usrsctp_setsockopt(link.sock, IPPROTO_SCTP, SCTP_MAX_CWND, &value, sizeof value) == 0)
    link.max_cwnd = cap;
}

// A retransmission timeout sets SCTP's window to one packet and its slow-start threshold to half
// the window; each further one during the recovery halves the threshold again, down to 4
// packets. After a burst of losses (a queue that overflowed) the window then grows by one packet
// per round trip: at 100 ms, 14 KB a second. Once SCTP has resent what was lost (a second
// without retransmissions), congestion control starts afresh: slow start, up to the cap, which
// follows the delivery rate (cap_window).
void UsrsctpTransport::recover_window(Link& link, const WindowInfo& w, double now) {
  if (link.data_chunks_retransmitted != link.retransmitted_seen) {
    link.retransmitted_seen = link.data_chunks_retransmitted;
    link.retransmitted_at = now;
    return;
  }
  if (w.data_timeouts < link.timeouts_at_restart)
    link.timeouts_at_restart = w.data_timeouts;  // a new association
  if (w.data_timeouts == link.timeouts_at_restart || now - link.retransmitted_at < kRecoveryQuiet)
    return;
  link.timeouts_at_restart = w.data_timeouts;
  restart_window(link);
}

}  // namespace transport::udp
