#pragma once
// The state behind UsrsctpTransport, shared by its files: usrsctp_transport.cpp (associations,
// messages), usrsctp_receive.cpp (datagrams, SCTP packets, messages and notifications in),
// usrsctp_paths.cpp (paths, probes, address learning), usrsctp_pmtu.cpp, usrsctp_fec.cpp,
// usrsctp_window.cpp, usrsctp_socket.cpp, usrsctp_redundancy.cpp and usrsctp_path_stats.cpp.
// Internal: included by those only.

#include <usrsctp.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "src/base/bytes.hpp"
#include "src/fec/controller.hpp"
#include "src/fec/receiver.hpp"
#include "src/fec/sender.hpp"
#include "src/transport/assoc_link.hpp"
#include "src/transport/message_buffer.hpp"
#include "src/transport/path_auth.hpp"
#include "src/transport/udp/delivery_meter.hpp"
#include "src/transport/udp/inflight_cap.hpp"
#include "src/transport/udp/pmtu.hpp"
#include "src/transport/udp/usrsctp_transport.hpp"

namespace transport::udp {

// FEC below SCTP on one path (transport_usrsctp_fec.cpp): the numbering and parity of the
// datagrams we send on it and how much parity they get, and the rebuilding and in-order release
// of the ones we receive on it.
struct UsrsctpTransport::PathFec {
  PathFec(const crypto::Key& key, const fec::SenderOptions& send,
          const fec::ReceiverOptions& receive, const fec::ControllerOptions& control)
      : sender(key, send), receiver(key, receive), controller(control) {}
  fec::Sender sender;
  fec::Receiver receiver;
  fec::Controller controller;
  std::uint32_t reported_received = 0;        // receiver's `received` when we last sent a report
  double restart_at = -1, restarted_at = -1;  // congestion control restart due / last judged
  double restart_scheduled = -1;              // when the due restart was scheduled
  std::uint64_t retransmitted_seen = 0;       // the peer's SCTP retransmissions at the last tick
  fec::wire::Report last_report, restart_report;  // the peer's latest report; at the scheduling
  bool reported = false;
  std::uint64_t reports_in = 0, reports_out = 0;
};

struct UsrsctpTransport::Peer {
  struct Path {
    std::size_t socket = 0;  // index into owner->sockets_
    base::Endpoint remote;   // one of the peer's addresses, or a learned address and port
    // -1: from the config; else learned, and this is the peer's own id of the path (from its
    // authenticated probes), so a path that moves (NAT rebinding) is replaced, not added.
    int learned_id = -1;
    bool confirmed = false;  // an authenticated echo came back on it (peers with a key)
    double last_out = 0;     // loop time of the last datagram sent on it (keepalive)
    double next_probe = 0;   // unconfirmed single path: when to probe next, and the backoff
    double probe_backoff = 0;
    std::uint64_t bytes_out = 0, bytes_in = 0, datagrams_out = 0, datagrams_in = 0;
    // DATA chunks sent on it by any slot, and how many of them were retransmissions (FEC's cue).
    std::uint64_t data_chunks_out = 0, data_chunks_retransmitted = 0;
    std::shared_ptr<PathFec> fec;  // made when FEC is offered by us (receiving) or agreed (sending)
    // The counters above at the last kSamples ticks of the path statistics (every 100 ms,
    // usrsctp_path_stats.cpp), a ring: once it is full, samples[next_sample] is the oldest.
    struct Sample {
      double at = 0;  // mono_now()
      std::uint64_t bytes_out = 0, bytes_in = 0, data_chunks_out = 0, data_chunks_retransmitted = 0;
    };
    static constexpr std::size_t kSamples = 11;
    std::array<Sample, kSamples> samples{};
    std::size_t next_sample = 0, sample_count = 0;
    bool learned() const { return learned_id >= 0; }
  };

  PeerId id = 0;
  std::optional<path_auth::PathKey> key;  // authenticated probes and learning: with a key only
  std::vector<Path> paths;  // priority order (config, then learned); empty until one is learned
  std::size_t primary = 0;  // the path failover mode sends on; valid if paths exist
  // Aggregate mode: the paths carrying traffic (up, and up for the failback hold unless primary),
  // in path order; empty: every slot on the primary.
  std::vector<std::size_t> active;
  // The path slot's packets go out on.
  std::size_t path_for(std::uint16_t slot) const {
    return active.empty() ? primary : active[slot % active.size()];
  }
  std::unique_ptr<PathMonitor> monitor;  // with two or more paths
  std::uint64_t path_changes = 0;
  // After a failover the peer may not have noticed yet and still sends its SACKs of our
  // retransmissions on the dead path. While the chunks in flight stay unacknowledged, the
  // retransmission timer is fired again `left` more times, every chase interval
  // (UsrsctpTransport::chase_retransmission).
  struct Chase {
    int left = 0;
    double next = 0;
    std::vector<std::uint32_t> unacked;  // chunks in flight per slot at the last firing
  } chase;
  std::uint32_t next_seq = 1;        // requests on paths without a monitor
  std::vector<Link*> slots;          // index = slot = SCTP port - sctp_port
  bool foreign_slot_logged = false;  // the peer sent to a slot we do not have
  // Paths moved or refused (a full peer): one line per 10 s (a NAT that rebinds often, or
  // someone moving the path back and forth, must not flood the log), with the count since.
  base::RateLimit learn_log{10};
  std::uint64_t learn_unlogged = 0;
  // Path MTU (transport_usrsctp_pmtu.cpp): what the peer's associations are sized for, and the
  // largest DF datagram sent to the peer since it was set.
  transport::udp::pmtu::Budget pmtu;
  std::uint64_t largest_at_pmtu = 0;
  // FEC below SCTP: offered by our config (with a key), agreed once the peer's HELLO offered it
  // too; the key of its parity and reports (derived from the path key).
  bool fec_offered = false, fec_agreed = false;
  crypto::Key fec_key{};

  // The path a datagram from `from` arriving on `socket` belongs to: a learned path by address
  // and port, a configured one by address (a peer may send from another port than it listens
  // on); socket SIZE_MAX matches any socket.
  std::optional<std::size_t> path_of(std::size_t socket, const base::Endpoint& from) const {
    for (std::size_t i = 0; i < paths.size(); ++i) {
      const Path& p = paths[i];
      if (socket != SIZE_MAX && p.socket != socket) continue;
      if (p.learned() ? p.remote == from : p.remote.same_address(from)) return i;
    }
    return std::nullopt;
  }
};

// A slot of the pool (assoc_link.hpp: peer, slot, port, machine, assoc id, counters) with its
// usrsctp socket, whose AF_CONN address is the Link itself.
struct UsrsctpTransport::Link : AssocLink {
  UsrsctpTransport* owner = nullptr;
  Peer* p = nullptr;
  UsrsctpSocket* sock = nullptr;
  void* conn_addr = nullptr;  // its AF_CONN address (a token, see live_links)
  bool closing = false;       // aborted: the socket is closed from a zero timer, not serviced
  bool dirty = false;         // queued in owner->dirty_
  base::RateLimit window_log{30.0};  // of the "the window is the limit" line
  // Our last verification tags (from the INIT / INIT-ACK we sent): the peer's SCTP packets carry
  // one, so a packet from an unknown address names its association (0: empty).
  std::array<std::uint32_t, 4> local_tags{};
  std::size_t next_tag = 0;
  std::unique_ptr<base::Timer> reconnect_timer;
  MessageBuffer rx;  // the message being received (may arrive in parts)
  // DATA chunks this association sent (conn_output reads every packet): the highest TSN so far;
  // a chunk at or below it is a retransmission, the sender's own measure of loss.
  std::uint32_t highest_tsn = 0;
  bool tsn_seen = false;
  // The cap on SCTP's window (inflight_cap.hpp), from the bytes acknowledged (what went into
  // usrsctp less what its send buffer still holds; never going back) and the RTT.
  InflightCap inflight;
  std::uint64_t acked = 0, sent_at_open = 0;
  std::uint64_t max_cwnd = 0;  // SCTP_MAX_CWND as last set (0: none)
  // SCTP's congestion window (bytes), smoothed RTT (seconds) and the delivery rate over about
  // the last RTT (bytes/s, from `delivered`) at the last cap_window (every 10 ms): what
  // send_load() reports besides the live send buffer.
  std::uint32_t cwnd_seen = 0;
  double srtt_seen = 0;
  double delivery_rate_seen = 0;
  DeliveryMeter delivered;            // `acked` at every cap_window: the recent delivery rate
  std::uint64_t window_restarts = 0;  // congestion control restarts (restart_window)
  std::uint64_t data_chunks_out = 0, data_chunks_retransmitted = 0;
  std::uint64_t retransmitted_at_restart = 0;  // data_chunks_retransmitted at the last FEC restart
  // Recovery from retransmission timeouts (cap_window): the timeouts when congestion control was
  // last restarted after some; when SCTP last resent a chunk.
  std::uint32_t timeouts_at_restart = 0;
  std::uint64_t retransmitted_seen = 0;
  double retransmitted_at = -1;
  // Redundant flows (usrsctp_redundancy.cpp), in loop time: until when a stream's DATA goes out
  // on every live path (index = stream), until when any stream's does, and until when our SACKs
  // do because the peer sends us copies. The DATA chunks received lately, by TSN modulo their
  // number: TSN << 8 | the path it came on + 1 (0: empty), which tells a copy from the original.
  std::vector<double> redundant_until;
  double redundant_any_until = -1, copy_sacks_until = -1;
  std::array<std::uint64_t, 64> received_tsns{};
};

// Called by usrsctp when a slot's socket becomes readable or writable (usrsctp_transport.cpp).
void upcall(UsrsctpSocket* sock, void* arg, int flags);

namespace detail {

inline constexpr std::size_t kSctpCommonHeader = 12;
inline constexpr std::uint8_t kChunkInit = 1, kChunkInitAck = 2;
inline constexpr std::size_t kMaxPaths = PathLearner::kMaxPaths;
inline constexpr std::uint32_t kSackEvery = 4;  // full packets per SACK (SCTP_DELAYED_SACK)
// Congestion windows in packets. A new association starts with kFirstWindow: the pool's
// associations are made before any flow needs them, so a first window costs no handshake and
// can be larger than a connection's (one stream at 100 ms: 43 Mbit/s in its first second with
// 100 packets, 30 with 10). A restart (restart_window: after random losses or a recovery from
// timeouts, while the path may be full) starts from kRestartWindow, as before.
inline constexpr std::uint32_t kFirstWindow = 100;
inline constexpr std::uint32_t kRestartWindow = 10;

// Plain path probe (doc/PROTOCOL.md, "Path probes"): SCTP ports 0/0 (invalid in SCTP) and a magic.
inline constexpr std::size_t kProbeSize = 24;
inline constexpr std::uint32_t kProbeMagic = path_auth::kMagic;
inline constexpr std::uint8_t kProbeRequest = 1, kProbeEcho = 2;

inline constexpr std::uint8_t kChunkData = 0, kChunkSack = 3, kChunkNrSack = 16, kChunkIData = 64;

// Walks the chunks of an SCTP packet after its common header: fn(type, chunk) for each, chunk
// being its bytes (its header included, its padding not). Returns false, having walked the ones
// before it, at a chunk shorter than its own header or one that runs past the packet.
template <typename Fn>
bool for_each_chunk(std::span<const std::uint8_t> packet, Fn&& fn) {
  std::size_t off = kSctpCommonHeader;
  while (off + 4 <= packet.size()) {
    std::size_t len = base::load_be16(packet.data() + off + 2);
    if (len < 4 || len > packet.size() - off) return false;
    fn(packet[off], packet.subspan(off, len));
    off += (len + 3) & ~std::size_t{3};
  }
  return true;
}

// Counts the DATA (and I-DATA) chunks of an SCTP packet we send on path into link's and path's
// counters: new TSNs (serial-number arithmetic) raise highest_tsn, the others are retransmissions.
inline void count_data_chunks(UsrsctpTransport::Link& link, UsrsctpTransport::Peer::Path& path,
                              std::span<const std::uint8_t> packet) {
  for_each_chunk(packet, [&](std::uint8_t type, std::span<const std::uint8_t> chunk) {
    if ((type != kChunkData && type != kChunkIData) || chunk.size() < 8) return;
    std::uint32_t tsn = base::load_be32(chunk.data() + 4);
    ++link.data_chunks_out;
    ++path.data_chunks_out;
    if (!link.tsn_seen || static_cast<std::int32_t>(tsn - link.highest_tsn) > 0) {
      link.highest_tsn = tsn;
      link.tsn_seen = true;
    } else {
      ++link.data_chunks_retransmitted;
      ++path.data_chunks_retransmitted;
    }
  });
}

inline bool is_probe(std::span<const std::uint8_t> bytes) {
  return bytes.size() >= 8 && bytes[0] == 0 && bytes[1] == 0 && bytes[2] == 0 && bytes[3] == 0 &&
         base::load_be32(bytes.data() + 4) == kProbeMagic;
}

// Monotonic seconds with microsecond resolution (probe RTTs are far below the loop's tick).
inline double mono_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// What SCTP_STATUS does not say (usrsctp_window.cpp): the advertised window, the send buffer,
// the timeouts; the other fields of w are kept.
WindowInfo read_window(UsrsctpSocket* sock, WindowInfo w);
// Bytes in the socket's send buffer: queued and in flight, not yet acknowledged.
std::optional<std::uint64_t> send_buffer_use(UsrsctpSocket* sock);

// A send error that says the path cannot work from here at all (no route, interface down).
inline bool local_path_failure(int err) {
  return err == ENETUNREACH || err == EHOSTUNREACH || err == ENETDOWN || err == EADDRNOTAVAIL;
}

}  // namespace detail
}  // namespace transport::udp
