#include "src/transport/udp/usrsctp_transport.hpp"
#include "src/transport/udp/usrsctp_state.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <unordered_map>

#include <sys/socket.h>
#include <unistd.h>

#include "src/base/crc32c.hpp"
#include "src/base/log.hpp"
#include "src/transport/sctp_status.hpp"

namespace transport::udp {

namespace {

using namespace detail;

// The links by their AF_CONN address. usrsctp may call conn_output for a socket closed long ago;
// only live links are written to. The address is a token never used twice in the process, not
// the Link's own address: a new Link may be allocated where an old one was, and the old one's
// associations may still linger in usrsctp (shutting down), which would then take the new
// Link's packets for theirs.
std::unordered_map<void*, UsrsctpTransport::Link*>& live_links() {
  static std::unordered_map<void*, UsrsctpTransport::Link*> links;
  return links;
}
void* next_conn_addr() {
  static std::uintptr_t last = 0;
  last += 16;
  return reinterpret_cast<void*>(last);
}
int usrsctp_users = 0;         // transports alive
bool usrsctp_running = false;  // the stack is initialized (finish fails while associations linger)

void debug_printf(const char* format, ...) {
  (void)format;
}

constexpr double kBackoffMin = 0.1, kBackoffMax = 2.0;
constexpr std::size_t kMaxPool = 16;

}  // namespace

// Called by usrsctp whenever it has an SCTP packet for the peer behind addr (a Link).
int conn_output(void* addr, void* buffer, std::size_t length, std::uint8_t /*tos*/,
                std::uint8_t set_df) {
  auto live = live_links().find(addr);
  if (live == live_links().end()) return 0;
  UsrsctpTransport::Link* link = live->second;
  UsrsctpTransport& t = *link->owner;
  auto* bytes = static_cast<const std::uint8_t*>(buffer);
  // Our INIT or INIT-ACK (alone in its packet): its Initiate Tag is the verification tag the
  // peer's packets will carry, which names this association when they come from a new address.
  if (length >= kSctpCommonHeader + 8 &&
      (bytes[kSctpCommonHeader] == kChunkInit || bytes[kSctpCommonHeader] == kChunkInitAck)) {
    link->local_tags[link->next_tag] = base::load_be32(bytes + kSctpCommonHeader + 4);
    link->next_tag = (link->next_tag + 1) % link->local_tags.size();
  }
  if (link->p->paths.empty()) {  // the peer's address is not known yet (learned later)
    ++t.stats_.datagrams_no_path;
    return 0;
  }
  const std::size_t on = link->p->path_for(link->slot);
  UsrsctpTransport::Peer::Path& path = link->p->paths[on];
  path.last_out = t.loop_.now();
  count_data_chunks(*link, path, {bytes, length});
  t.send_packet(*link->p, on, {bytes, length}, set_df != 0);
  if (link->redundant_any_until > t.loop_.now() || link->copy_sacks_until > t.loop_.now())
    t.send_copies(*link, on, {bytes, length}, set_df != 0);
  return 0;
}

void UsrsctpTransport::send_packet(Peer& peer, std::size_t on, std::span<const std::uint8_t> packet,
                                   bool df) {
  // Path MTU (transport_usrsctp_pmtu.cpp): a chunk cut for a larger MTU goes out as IP fragments.
  if (transport::udp::pmtu::must_fragment(df, packet.size(), peer.pmtu)) {
    send_fragmentable(peer, on, packet);
    return;
  }
  peer.largest_at_pmtu = std::max<std::uint64_t>(peer.largest_at_pmtu, packet.size());
  if (send_framed(peer, on, packet)) return;
  Peer::Path& path = peer.paths[on];
  std::span<std::uint8_t> datagram = sockets_[path.socket]->queue(path.remote, packet);
  ++path.datagrams_out;
  path.bytes_out += packet.size();
  // usrsctp leaves the checksum to us (crc32c offload): hardware CRC32c where the CPU has it.
  base::crc32c::set_sctp_checksum(datagram);
  ++stats_.datagrams_out;
  stats_.datagram_bytes_out += packet.size();
  stats_.largest_datagram_out = std::max<std::uint64_t>(stats_.largest_datagram_out, packet.size());
}

// Called by usrsctp when a socket becomes readable or writable; work is deferred to service().
void upcall(UsrsctpSocket* /*sock*/, void* arg, int /*flags*/) {
  auto* link = static_cast<UsrsctpTransport::Link*>(arg);
  if (!link->dirty) {
    link->dirty = true;
    link->owner->dirty_.push_back(link);
  }
}

UsrsctpTransport::UsrsctpTransport(base::EventLoop& loop, UsrsctpOptions options,
                                   std::vector<PeerEndpoints> peers)
    : loop_(loop),
      options_(std::move(options)),
      network_(options_.network ? options_.network : &host_network_),
      peers_(std::move(peers)),
      pool_({.min = kBackoffMin, .max = kBackoffMax}, options_.sctp_port),
      tick_(loop, 0.01, 0.01, [this] { on_timer_tick(); }),
      probe_tick_(loop, 0, std::max(options_.probe_interval_ms, 1u) / 1000.0,
                  [this] { on_probe_tick(); }),
      pmtu_tick_(loop, 2.0, 2.0, [this] { check_path_mtu("periodic"); }),
      pmtu_recheck_(loop, 0, 0,
                    [this] { check_path_mtu("the kernel refused a datagram as too big"); }),
      fec_tick_(loop, 0.1, 0.1,
                [this] {
                  on_fec_tick();
                  sample_paths(mono_now());
                }),
      fec_timer_(loop, 0, 0, [this] { on_fec_timer(); }),
      before_block_(loop, [this] { before_block(); }) {
  ++usrsctp_users;
  if (!usrsctp_running) {
    usrsctp_running = true;
    usrsctp_init_nothreads(0, &conn_output, &debug_printf);
    usrsctp_enable_crc32c_offload();  // conn_output writes the checksum, on_datagram verifies it
    usrsctp_sysctl_set_sctp_ecn_enable(0);
    usrsctp_sysctl_set_sctp_asconf_enable(0);
    usrsctp_sysctl_set_sctp_auth_enable(0);
    // Windows: every socket's buffers (those made for a peer's INIT too) hold a path's
    // bandwidth-delay product, and the chunk limit (512 by default, per association, counting
    // the data in flight) does not cap them first: at 20 ms it held a stream to ~270 Mbit/s.
    auto window = static_cast<std::uint32_t>(options_.socket_buffer);
    usrsctp_sysctl_set_sctp_sendspace(window);
    usrsctp_sysctl_set_sctp_recvspace(window);
    usrsctp_sysctl_set_sctp_max_chunks_on_queue(std::max<std::uint32_t>(512, window / 512));
    // The first window of an association or a new path, in packets (usrsctp's default is 3):
    // kFirstWindow. usrsctp also starts again from this value whenever the congestion control
    // is set anew, so restart_window lowers it to kRestartWindow around that (usrsctp_window.cpp).
    usrsctp_sysctl_set_sctp_initial_cwnd(kFirstWindow);
    // Max burst (4 packets) as usrsctp applies it by default cuts the window itself to flight + 4
    // packets whenever less is in flight, so every pause of the senders behind the TUN (a
    // slow-starting inner TCP waiting for its ACKs) shrank the window back to what they had
    // sent, and slow start began again. The burst limit stays (4 rounds of output per call),
    // the window is left alone (one stream at 20 ms and 1 % loss: +6 to +15 % in two runs).
    usrsctp_sysctl_set_sctp_use_cwnd_based_maxburst(0);
    // Slow start grows the window by the bytes a SACK acknowledges, but by at most L packets per
    // SACK (appropriate byte counting, RFC 3465; usrsctp's L is 2). With a SACK every
    // kSackEvery packets, L = 2 let the window grow by half per RTT instead of doubling it.
    // L = 2 * kSackEvery doubles it per RTT even when every other SACK is lost.
    usrsctp_sysctl_set_sctp_L2_abc_variable(2 * kSackEvery);
  }
  for (std::size_t i = 0; i < options_.locals.size(); ++i) {
    // Room for a burst of a whole window arriving faster than this loop reads it.
    int udp_buffer = std::clamp(2 * options_.socket_buffer, 4 << 20, 64 << 20);
    sockets_.push_back(network_->open(options_.locals[i], options_.fwmark, udp_buffer));
    socket_watchers_.push_back(std::make_unique<base::IoWatcher>(
        loop, sockets_.back()->fd(), base::kRead, [this, i](int) { on_udp_readable(i); }));
    socket_watchers_.back()->start();
    const DatagramSocket& u = *sockets_.back();
    LOG_INFO("transport udp: SCTP over UDP on %s (UDP GSO %s, GRO %s, CRC32c %s)",
             u.local().to_string().c_str(), u.gso() ? "on" : "off", u.gro() ? "on" : "off",
             base::crc32c::hardware() ? "sse4.2" : "software");
  }
  for (PeerId id = 0; id < peers_.size(); ++id) {
    auto peer = std::make_unique<Peer>();
    peer->id = pool_.add_peer(peers_[id].name);
    peer->key = peers_[id].path_key;
    if (peer->key) peer->key->self = probe_self_;
    peer->fec_offered = peers_[id].fec && peer->key;
    if (peer->fec_offered) peer->fec_key = path_auth::fec_key(*peer->key);
    // One path per (local socket, remote address) of the same family, locals outer.
    for (std::size_t s = 0; s < sockets_.size(); ++s) {
      for (const base::Endpoint& remote : peers_[id].remotes) {
        if (sockets_[s]->local().family() != remote.family()) continue;
        if (peer->paths.size() == kMaxPaths) break;
        Peer::Path path;
        path.socket = s;
        path.remote = remote;
        peer->paths.push_back(path);
      }
    }
    if (peer->paths.empty() && !peers_[id].remotes.empty()) {
      // No local of the peer's family among explicit ones: let the host's routing choose.
      const base::Endpoint& remote = peers_[id].remotes.at(0);
      if (auto socket = pick_socket(remote)) {
        Peer::Path path;
        path.socket = *socket;
        path.remote = remote;
        peer->paths.push_back(path);
      } else {
        LOG_ERROR("peer %s: no local address of the family of %s ([transport] local): unreachable",
                  peers_[id].name.c_str(), remote.to_string().c_str());
      }
    }
    if (peers_[id].remotes.empty())
      LOG_INFO(
          "peer %s: no remote configured: its address is learned from its authenticated probes",
          peers_[id].name.c_str());
    if (peer->paths.size() > 1) {
      std::string list;
      for (const auto& path : peer->paths) {
        list += list.empty() ? "" : ", ";
        list += sockets_[path.socket]->local().to_string() + " -> " + path.remote.to_string();
      }
      LOG_INFO("peer %s: %zu paths (in priority order): %s", peers_[id].name.c_str(),
               peer->paths.size(), list.c_str());
    }
    std::size_t pool = std::clamp<std::size_t>(peers_[id].pool, 1, kMaxPool);
    if (options_.sctp_port + pool - 1 > 65535) {
      pool = 65536 - options_.sctp_port;
      LOG_WARN("peer %s: pool cut to %zu (SCTP ports end at 65535)", peers_[id].name.c_str(), pool);
    }
    for (std::size_t slot = 0; slot < pool; ++slot) {
      auto link = std::make_unique<Link>();
      pool_.add(*link, id);
      link->owner = this;
      link->p = peer.get();
      link->reconnect_timer = std::make_unique<base::Timer>(loop, 0, 0, [this, l = link.get()] {
        // An aborted link still holds its socket: close it first, reconnect after the backoff.
        if (l->sock) {
          close_socket(*l);
          schedule_reconnect(*l);
        } else {
          open_socket(*l);
        }
      });
      link->conn_addr = next_conn_addr();
      live_links().emplace(link->conn_addr, link.get());
      usrsctp_register_address(link->conn_addr);
      peer->slots.push_back(link.get());
      links_.push_back(std::move(link));
    }
    peer->pmtu = transport::udp::pmtu::compute(options_.wan_mtu, config_ip_header(),
                                               {});  // until checked at start
    peer_state_.push_back(std::move(peer));
  }
}

UsrsctpTransport::~UsrsctpTransport() {
  for (auto& link : links_) {
    close_socket(*link);
    usrsctp_deregister_address(link->conn_addr);
    live_links().erase(link->conn_addr);
  }
  for (auto& socket : sockets_) socket->flush();
  // Closed associations may still be shutting down in the stack: then it stays up (and is not
  // initialized again by the next transport of this process).
  if (--usrsctp_users == 0 && usrsctp_finish() == 0) usrsctp_running = false;
}

void UsrsctpTransport::start() {
  last_tick_ = loop_.now();
  tick_.start();
  for (auto& peer : peer_state_) {
    if (peer->paths.size() < 2) continue;
    peer->monitor =
        std::make_unique<PathMonitor>(peer->paths.size(), monitor_options(), mono_now());
  }
  probe_tick_.start();      // supervision, confirmation, keepalives (transport_usrsctp_paths.cpp)
  check_path_mtu("start");  // before the first connect (transport_usrsctp_pmtu.cpp)
  pmtu_tick_.start();
  fec_tick_.start();
  for (auto& link : links_) open_socket(*link);
}

void UsrsctpTransport::schedule_reconnect(Link& link) {
  link.reconnect_timer->start(pool_.schedule_reconnect(link, Time::now()));
}

// The association is gone (or never came up): the socket is closed first, so no usrsctp socket
// of a dead association is left while the gateway hears of it; the pool says when to reconnect.
void UsrsctpTransport::link_down(Link& link, const char* why) {
  if (link.machine.state() != SlotState::closed) pool_.transition(link, SlotEvent::lost);
  close_socket(link);
  link.reconnect_timer->start(pool_.lost(link, why, Time::now()));
}

void UsrsctpTransport::on_timer_tick() {
  double now = loop_.now();
  tick_remainder_ms_ += (now - last_tick_) * 1000.0;
  last_tick_ = now;
  auto elapsed = static_cast<std::uint32_t>(tick_remainder_ms_);
  if (elapsed == 0) return;
  tick_remainder_ms_ -= elapsed;
  double mono = mono_now();
  for (auto& peer : peer_state_) update_paths(*peer, mono);
  usrsctp_handle_timers(elapsed);
  for (auto& link : links_) cap_window(*link, mono);
  service();
}

void UsrsctpTransport::before_block() {
  service();
  fec_before_block();  // blocks past their age get their parity; the next FEC deadline
  for (auto& socket : sockets_) {
    if (socket->has_queued()) socket->flush();
  }
  after_flush_pmtu();  // a datagram refused as too big: check the path MTU at once
}

void UsrsctpTransport::service() {
  // Handlers may send, which may mark more links dirty: loop until quiet (bounded).
  for (int round = 0; round < 16 && !dirty_.empty(); ++round) {
    std::vector<Link*> work;
    work.swap(dirty_);
    for (Link* link : work) {
      link->dirty = false;
      service_link(*link);
    }
  }
  if (writable_owed_) {
    writable_owed_ = false;
    if (events_) events_->on_writable();
  }
}

void UsrsctpTransport::service_link(Link& link) {
  if (!link.sock || link.closing) return;  // aborted: closing soon
  int events = usrsctp_get_events(link.sock);
  if (events & SCTP_EVENT_READ) read_messages(link);
  if (link.sock && link.blocked && (usrsctp_get_events(link.sock) & SCTP_EVENT_WRITE)) {
    link.blocked = false;
    writable_owed_ = true;
  }
}

std::string UsrsctpTransport::path_text(const Peer& peer, std::uint16_t slot) const {
  if (peer.paths.empty()) return "(no path: the peer's address is not known yet)";
  const Peer::Path& path = peer.paths[peer.path_for(slot)];
  return sockets_[path.socket]->local().to_string() + " -> " + path.remote.to_string();
}

UsrsctpTransport::Link* UsrsctpTransport::find_link(AssocId assoc) const {
  return static_cast<Link*>(pool_.find(assoc));
}

SendResult UsrsctpTransport::send(AssocId assoc, std::uint16_t stream,
                                  std::span<const std::uint8_t> msg, SendOptions options) {
  Link* link = find_link(assoc);
  if (!link || !link->sock) return SendResult::closed;
  if (stream >= link->out_streams) return SendResult::error;
  // Every message is sent "partially reliable: abandon after 2^32 - 1 retransmissions", which is
  // reliable. The point: usrsctp takes a fast path for SACKs without gaps, and that path never
  // restarts the retransmission timer when the cumulative ack moves (RFC 4960 6.3.2, R3), so
  // under a steady flow the timer fires every RTO and, at long RTTs, marks the oldest chunks
  // as lost and drops the window to one packet (at 100 ms: every 1-2 s). With PR-SCTP chunks
  // outstanding, every SACK takes the full path, which restarts the timer.
  // Before the send: usrsctp may put the message on the wire from inside it (conn_output).
  if (options.redundant) mark_redundant(*link, stream);
  sctp_sendv_spa info{};
  info.sendv_flags = SCTP_SEND_SNDINFO_VALID | SCTP_SEND_PRINFO_VALID;
  info.sendv_sndinfo.snd_sid = stream;
  info.sendv_prinfo.pr_policy = SCTP_PR_SCTP_RTX;
  info.sendv_prinfo.pr_value = UINT32_MAX;
  ssize_t n = usrsctp_sendv(link->sock, msg.data(), msg.size(), nullptr, 0, &info, sizeof info,
                            SCTP_SENDV_SPA, 0);
  if (n < 0) {
    if (errno == EWOULDBLOCK || errno == EAGAIN) {
      link->blocked = true;
      note_window_limit(*link);
      return SendResult::would_block;
    }
    ++stats_.send_errors;
    return SendResult::error;
  }
  link->count_sent(msg.size());
  return SendResult::ok;
}

std::optional<SendLoad> UsrsctpTransport::send_load(AssocId assoc) const {
  const Link* link = find_link(assoc);
  if (!link || !link->sock || !link->machine.ready() || link->p->paths.empty()) return std::nullopt;
  SendLoad load;
  load.path = link->p->path_for(link->slot);
  // Before the first measurement: a window of 4 packets over 10 ms.
  load.srtt = link->srtt_seen > 0 ? link->srtt_seen : 0.01;
  load.window = std::max<std::uint64_t>(link->cwnd_seen, 4 * 1400);
  load.queued = send_buffer_use(link->sock).value_or(0);
  load.delivery_rate = link->delivery_rate_seen;
  return load;
}

void UsrsctpTransport::abort(AssocId assoc, const char* reason) {
  Link* link = find_link(assoc);
  if (!link) return;
  // Not from inside a usrsctp call: close from a zero timer (then reconnect after the hold-off).
  link->closing = true;
  pool_.abort(*link, reason, Time::now());
  link->reconnect_timer->start(0);
}

std::vector<AssocInfo> UsrsctpTransport::associations() const {
  std::vector<AssocInfo> out;
  std::unordered_map<const Peer*, std::vector<std::uint64_t>> cwnds;  // path_cwnds, once a peer
  for (const auto& link : links_) {
    AssocInfo info = pool_.info(*link);
    const Peer& peer = *link->p;
    auto peer_cwnds = cwnds.find(&peer);
    if (peer_cwnds == cwnds.end()) peer_cwnds = cwnds.emplace(&peer, path_cwnds(peer)).first;
    info.path = path_text(peer, link->slot);
    info.path_changes = peer.path_changes;
    if (link->sock && link->machine.ready()) {
      sctp_status status{};
      socklen_t len = sizeof status;
      if (usrsctp_getsockopt(link->sock, IPPROTO_SCTP, SCTP_STATUS, &status, &len) == 0) {
        apply_status(info, status);
        info.sctp_mtu = status.sstat_primary.spinfo_mtu;
      }
      info.window = read_window(link->sock, info.window);
      info.window.inflight_cap = link->max_cwnd;
      info.window.restarts = link->window_restarts;
      info.window.delivery_rate = static_cast<std::uint64_t>(link->inflight.bandwidth());
      info.window.rtt_min_ms = static_cast<std::uint32_t>(link->inflight.rtt_min() * 1000 + 0.5);
      info.window.chunks_sent = link->data_chunks_out;
      info.window.chunks_retransmitted = link->data_chunks_retransmitted;
    }
    info.path_mtu = static_cast<std::uint32_t>(peer.pmtu.ip_mtu);
    info.largest_datagram_at_path_mtu = peer.largest_at_pmtu;
    double now = mono_now();
    for (std::size_t i = 0; i < peer.paths.size(); ++i) {
      const Peer::Path& path = peer.paths[i];
      PathInfo p;
      p.local = sockets_[path.socket]->local().to_string();
      p.remote = path.remote.to_string();
      p.primary = i == peer.primary;
      p.active = i == peer.path_for(link->slot);
      p.learned = path.learned();
      p.bytes_out = path.bytes_out;
      p.bytes_in = path.bytes_in;
      p.datagrams_out = path.datagrams_out;
      p.datagrams_in = path.datagrams_in;
      if (peer.fec_agreed || path.fec) {
        bool framing = path.fec && path.fec->controller.framing();
        p.fec = !peer.fec_agreed ? "peer's only" : framing ? "on" : "off";
        if (path.fec) {
          p.fec_loss = path.fec->controller.loss();
          p.fec_redundancy = path.fec->controller.redundancy();
          p.fec_data_out = path.fec->sender.stats().data;
          p.fec_parity_out = path.fec->sender.stats().parity;
          const fec::Receiver::Stats& rs = path.fec->receiver.stats();
          p.fec_received = rs.received;
          p.fec_lost = rs.lost;
          p.fec_rebuilt = rs.rebuilt;
          p.fec_unrecovered = rs.unrecovered;
        }
      }
      if (peer.monitor) {
        const PathMonitor::Path& m = peer.monitor->path(i);
        p.probed = true;
        p.state = to_string(m.state);
        p.srtt_us = static_cast<std::uint32_t>(std::lround(m.srtt * 1e6));
        p.loss_pct = static_cast<std::uint32_t>(std::lround(peer.monitor->loss(i, now) * 100));
      } else {  // the only path: SCTP's view
        p.state = link->machine.ready() ? "up" : "unknown";
        p.srtt_us = info.srtt_ms * 1000;
      }
      info.paths.push_back(std::move(p));
    }
    fill_path_stats(peer, peer_cwnds->second, info.paths, now);
    out.push_back(info);
  }
  return out;
}

// A full send buffer is ordinary backpressure (the path is slower than the senders behind the
// TUN); it is worth a log line when the window itself is the limit: the data in flight fills
// [transport] max_window and SCTP's congestion window would allow more. Once per 30 s at most.
void UsrsctpTransport::note_window_limit(Link& link) {
  double now = loop_.now();
  if (!link.window_log.ready(now)) return;
  sctp_status status{};
  socklen_t len = sizeof status;
  if (usrsctp_getsockopt(link.sock, IPPROTO_SCTP, SCTP_STATUS, &status, &len) != 0) return;
  WindowInfo w = read_window(link.sock, {});
  auto limit = static_cast<std::uint64_t>(options_.socket_buffer);
  if (w.send_buffered * 10 < limit * 9 ||
      std::uint64_t{status.sstat_primary.spinfo_cwnd} * 10 < limit * 9)
    return;
  link.window_log.note(now);
  std::uint32_t srtt = std::max<std::uint32_t>(status.sstat_primary.spinfo_srtt, 1);
  LOG_WARN(
      "peer %s: association %llu: the window is the limit: %.1f MiB in flight fill [transport] "
      "max_window at %u ms round trip (at most %.0f Mbit/s); a larger max_window would carry more",
      peers_[link.peer].name.c_str(), static_cast<unsigned long long>(link.assoc),
      static_cast<double>(w.send_buffered) / (1 << 20), srtt,
      static_cast<double>(limit) * 8 / (srtt * 1000.0));
}

TransportStats UsrsctpTransport::stats() const {
  TransportStats stats = stats_;
  struct sctpstat sctp {};
  usrsctp_get_stat(&sctp);
  stats.sctp_duplicate_data = sctp.sctps_recvdupdata;
  stats.sctp_bad_vtag = sctp.sctps_badvtag;
  stats.sctp_out_of_the_blue = sctp.sctps_outoftheblue;
  stats.sctp_retransmitted_chunks = sctp.sctps_sendretransdata;
  stats.sctp_fast_retransmits = sctp.sctps_sendfastretrans;
  stats.sctp_data_timeouts = sctp.sctps_timodata;
  stats.sctp_receive_drops = std::uint64_t{sctp.sctps_datadropchklmt} + sctp.sctps_datadroprwnd;
  for (const auto& socket : sockets_) stats.datagrams_too_big += socket->stats().too_big;
  return stats;
}

}  // namespace transport::udp
