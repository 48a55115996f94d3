#pragma once
// UsrsctpTransport: SCTP over UDP (RFC 6951) with the userspace stack usrsctp in AF_CONN mode,
// driven entirely from the event loop (usrsctp_init_nothreads: no threads, no locks of ours).
//
//   UDP datagram in -> DatagramSocket::receive -> Link of the sender -> usrsctp_conninput
//   usrsctp wants to send -> conn_output(Link*) -> DatagramSocket::queue -> flush before the loop
//   blocks usrsctp socket readable/writable -> upcall marks the Link -> service() reads messages
//   and
//     notifications and hands them to Events (outside any usrsctp call, so handlers may send)
//   every 10 ms -> usrsctp_handle_timers(elapsed), path states re-evaluated
//   every probe_interval -> a probe on every path of every multi-path peer (doc/PROTOCOL.md)
//   every 100 ms -> FEC decisions and reports, a sample of each path's counters (show's rates)
//   every 2 s, and at once after the kernel refused a datagram as too big -> each peer's path MTU
//     from the kernel (route MTU, PMTU cache), applied to its associations
//     (transport_usrsctp_pmtu.cpp)
//
// Association pool (assoc_pool.hpp): a peer has `pool` Links (slots), the records of the
// transport's AssocPool with what is usrsctp's own (usrsctp_state.hpp); slot i is a one-to-one
// usrsctp socket whose AF_CONN address is the Link itself, bound to SCTP port sctp_port + i and
// connected to the peer's sctp_port + i. Both gateways connect to each other slot by slot (SCTP
// resolves each INIT collision into one association); a restarted peer's INIT restarts the
// association; a lost one is re-established with backoff. Every slot is kept established, so a
// new flow finds a ready association without a handshake. An incoming datagram belongs to the
// peer it comes from (source address) and, within the peer, to the slot named by the SCTP
// destination port (bytes 2-3 of the SCTP common header). Datagrams for a slot we do not have
// (the peer's pool is larger) are dropped and logged once; our slots the peer lacks keep retrying
// with backoff and are logged once (by the pool). Each slot is an AssocSlot state machine
// (connecting, ready, draining, closed), shown by `sctptund show`. Links live as long as the
// transport, because usrsctp may still call conn_output for a socket after it was closed.
//
// Multi-path: usrsctp in AF_CONN mode announces no addresses, so each association is single-path
// inside and the path choice is ours. The slots of a peer share its paths: a Peer has one Path
// per (local socket, peer address) pair of the same family, in config order (locals outer,
// remotes inner). With two or more paths a PathMonitor probes them and names the primary (best
// live path, with failback hysteresis); conn_output sends every slot's packets on it. Datagrams
// from any of the peer's addresses on any socket are fed to the peer's associations. When the
// primary changes, usrsctp's retransmission timers are fired early so that the data lost on the
// dead path is resent at once on the new one.

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "src/base/event_loop.hpp"
#include "src/base/rate_limit.hpp"
#include "src/transport/assoc_pool.hpp"
#include "src/transport/path_auth.hpp"
#include "src/transport/path_monitor.hpp"
#include "src/transport/transport.hpp"
#include "src/transport/udp/path_learner.hpp"
#include "src/transport/udp/pmtu.hpp"
#include "src/transport/udp/udp_socket.hpp"

struct socket;  // usrsctp's socket, declared at global scope by <usrsctp.h>
using UsrsctpSocket = struct socket;

namespace transport::udp {

struct UsrsctpOptions : SctpOptions {
  int wan_mtu = 1500;  // the WAN's IP MTU; SCTP packets are sized to fit it
  std::uint32_t heartbeat_ms = 1000;
  std::uint32_t keepalive_s = 25;  // a path that sent nothing this long gets a probe (NAT mappings)
  std::uint32_t failback_hold_ms = 1000;  // a better path must be up this long to get traffic back
  // usrsctp's congestion control module: 0 RFC 4960 (Reno-like), 1 HSTCP, 2 H-TCP.
  std::uint32_t congestion_control = 0;
  double fec_max_overhead = 0.25;  // the most parity FEC may add, per data datagram
  bool window_cap = true;          // cap the window at a few bandwidth-delay products
  // Several paths to a peer: false, the primary carries every association (the others stand
  // by); true, association slot s goes on the s-th live path (modulo their number), so each
  // path's associations have congestion windows of their own and flows on them add up.
  bool aggregate = false;
  // Where the WAN sockets come from (nullptr: the host's; tests: fake_network.hpp). Outlives the
  // transport.
  Network* network = nullptr;
};

class UsrsctpTransport final : public Transport {
 public:
  // Throws std::system_error / std::runtime_error when a UDP socket cannot be bound.
  UsrsctpTransport(base::EventLoop& loop, UsrsctpOptions options, std::vector<PeerEndpoints> peers);
  ~UsrsctpTransport() override;

  void set_events(Events* events) override { pool_.set_events(events_ = events); }
  void start() override;
  SendResult send(AssocId assoc, std::uint16_t stream, std::span<const std::uint8_t> msg,
                  SendOptions options = {}) override;
  void abort(AssocId assoc, const char* reason) override;
  std::vector<AssocInfo> associations() const override;
  void set_fec(PeerId peer, bool both_offer) override;
  std::optional<SendLoad> send_load(AssocId assoc) const override;
  TransportStats stats() const override;
  const char* kind() const override { return "udp"; }

  struct Link;
  struct Peer;
  struct PathFec;

 private:
  void on_udp_readable(std::size_t socket_index);
  void on_datagram(std::size_t socket_index, const base::Endpoint& from,
                   std::span<const std::uint8_t> bytes);
  // One SCTP packet from the WAN (a datagram, or one FEC delivered in order or rebuilt).
  void on_sctp_packet(std::size_t socket_index, const base::Endpoint& from,
                      std::span<const std::uint8_t> bytes);
  // FEC below SCTP: transport_usrsctp_fec.cpp.
  void on_fec(std::size_t socket_index, const base::Endpoint& from,
              std::span<const std::uint8_t> bytes);
  // Sends packet framed (numbered, into the path's parity) when the path frames; false: send it
  // plain.
  bool send_framed(Peer& peer, std::size_t path, std::span<const std::uint8_t> packet);
  PathFec* path_fec(Peer& peer, std::size_t path);  // made on first use; null without FEC
  void on_fec_tick();
  void on_fec_timer();
  void fec_before_block();
  void restart_congestion_control(Peer& peer);
  void schedule_restart(PathFec& state, double now);
  void on_timer_tick();
  // Paths, probes and learning: transport_usrsctp_paths.cpp.
  void on_probe_tick();
  void on_probe(std::size_t socket_index, const base::Endpoint& from,
                std::span<const std::uint8_t> bytes);
  void on_auth_probe(std::size_t socket_index, const base::Endpoint& from,
                     std::span<const std::uint8_t> bytes);
  void echo_arrived(Peer& peer, std::size_t path, std::size_t socket_index, std::uint32_t seq);
  // A request on path (to its remote, or to *to: the answer to a challenge goes back to where
  // the challenge came from).
  void send_request(Peer& peer, std::size_t path, std::uint64_t cookie, double now,
                    const base::Endpoint* to = nullptr);
  std::vector<PathLearner::PathView> path_views(const Peer& peer) const;
  int send_auth(Peer& peer, std::size_t socket_index, const base::Endpoint& to,
                const path_auth::Probe& probe);
  // Carries out what the learner answered for an input from socket_index.
  void carry_out(Peer& peer, std::size_t socket_index, const PathLearner::Answer& answer,
                 double now);
  void nominate(Link& link, std::size_t socket_index, const base::Endpoint& from);
  void commit(Peer& peer, const PathLearner::Commit& commit, double now);
  PathMonitorOptions monitor_options() const;
  void retransmit_now(Peer& peer, double now);
  bool update_active(Peer& peer, double now);
  void update_paths(Peer& peer, double now);
  std::vector<std::uint32_t> nudge_retransmission(Peer& peer);
  void chase_retransmission(Peer& peer, double now);
  double chase_interval() const;
  struct InFlight {
    std::vector<std::uint32_t> unacked;  // chunks sent and not acknowledged, per slot
    std::uint32_t total = 0;             // of all slots
    std::uint32_t rto = 0;               // the largest retransmission timeout among them, ms
  };
  InFlight in_flight(Peer& peer) const;
  Peer* find_peer_by_address(const base::Endpoint& from) const;
  Link* find_link_by_tag(std::uint32_t tag) const;
  void note_unknown_source(const base::Endpoint& from);
  void before_block();
  void service();
  void service_link(Link& link);
  void read_messages(Link& link);
  void handle_notification(Link& link, std::span<const std::uint8_t> bytes);
  void open_socket(Link& link);
  // Logs that call (usrsctp_socket, _bind, _connect) failed for link, errno saying why.
  void log_socket_failure(Link& link, const char* call);
  void close_socket(Link& link);
  void note_window_limit(Link& link);
  void cap_window(Link& link, double now);
  void restart_window(Link& link);
  void recover_window(Link& link, const WindowInfo& w, double now);
  void link_down(Link& link, const char* why);
  void schedule_reconnect(Link& link);
  Link* find_link(AssocId assoc) const;
  // Path MTU: transport_usrsctp_pmtu.cpp.
  void check_path_mtu(const char* why);
  int config_ip_header() const;  // the IP header [transport] path_mtu is read with (20 or 40)
  void apply_path_mtu(Peer& peer, const transport::udp::pmtu::Budget& budget, const char* why);
  int route_mtu(const Peer& peer, std::size_t path) const;  // 0: unknown
  void send_fragmentable(Peer& peer, std::size_t path, std::span<const std::uint8_t> packet);
  void after_flush_pmtu();
  // One SCTP packet out on path: as IP fragments when it was cut for a larger MTU, framed when
  // the path does FEC, else plain (with its checksum written).
  void send_packet(Peer& peer, std::size_t path, std::span<const std::uint8_t> packet, bool df);
  // Redundant flows: usrsctp_redundancy.cpp.
  void mark_redundant(Link& link, std::uint16_t stream);
  void send_copies(Link& link, std::size_t sent_on, std::span<const std::uint8_t> packet, bool df);
  void note_copies(Link& link, std::size_t path, std::span<const std::uint8_t> packet);
  // Path statistics: usrsctp_path_stats.cpp.
  void sample_paths(double now);
  // The SCTP congestion windows of the peer's ready associations summed by the path each one's
  // packets go out on (index = path).
  std::vector<std::uint64_t> path_cwnds(const Peer& peer) const;
  // Fills in paths (the peer's, in order, their state set) role, rates, shares, data loss and
  // congestion windows (cwnds: path_cwnds(peer)).
  void fill_path_stats(const Peer& peer, std::span<const std::uint64_t> cwnds,
                       std::vector<PathInfo>& paths, double now) const;
  // "local -> remote" of the path slot's packets go out on, for logs and show.
  std::string path_text(const Peer& peer, std::uint16_t slot) const;
  // The UDP socket that carries traffic to remote: the one bound to the source address the
  // host's routing picks for it.
  std::optional<std::size_t> pick_socket(const base::Endpoint& remote) const;

  friend int conn_output(void*, void*, std::size_t, std::uint8_t, std::uint8_t);
  friend void upcall(UsrsctpSocket*, void*, int);

  base::EventLoop& loop_;
  base::RateLimit unknown_log_{10.0};    // of the "no peer's address" log line
  base::RateLimit unauth_log_{10.0};     // of the "no key of ours" log line
  base::RateLimit old_probe_log_{10.0};  // of the "probe of an earlier sctptund" log line
  std::uint64_t old_probes_unlogged_ = 0;
  // The sender field of all our authenticated probes (path_auth.hpp): random per transport.
  std::uint64_t probe_self_ = path_auth::random_cookie();
  PathLearner learner_;  // candidates, challenges and commits of every peer (path_learner.hpp)
  UsrsctpOptions options_;
  HostNetwork host_network_;
  Network* network_;  // options_.network or host_network_
  std::vector<PeerEndpoints> peers_;
  Events* events_ = nullptr;
  std::vector<std::unique_ptr<DatagramSocket>> sockets_;
  std::vector<std::unique_ptr<base::IoWatcher>> socket_watchers_;
  std::vector<std::unique_ptr<Peer>> peer_state_;  // index = PeerId
  AssocPool pool_;                                 // every slot of every peer
  std::vector<std::unique_ptr<Link>> links_;       // the pool's records, owned
  std::vector<Link*> dirty_;                       // links whose socket has events to service
  TransportStats stats_;
  bool writable_owed_ = false;
  double last_tick_ = 0;
  double tick_remainder_ms_ = 0;
  base::Timer tick_;
  base::Timer probe_tick_;
  base::Timer pmtu_tick_;                 // path MTU: the periodic check
  base::Timer pmtu_recheck_;              // path MTU: soon after a datagram was refused as too big
  double pmtu_checked_at_ = -1;           // mono_now() of the last check (-1: none yet)
  std::uint64_t too_big_seen_ = 0;        // the sockets' too_big counts at the last check
  base::Timer fec_tick_;                  // FEC decisions and reports, path samples, every 100 ms
  base::Timer fec_timer_;                 // FEC: the next hold deadline or block to close
  std::vector<std::uint8_t> parity_out_;  // parity datagrams made while framing one packet
  std::vector<std::size_t> parity_len_;
  base::BeforeBlock before_block_;
};

}  // namespace transport::udp
