#pragma once
// Transport: carries messages on numbered streams of associations to peers. Backends are sibling
// files behind this interface: transport_usrsctp (SCTP over UDP, userspace), loopback_transport
// (in-memory, for tests), and later transport_kernel.
//
// Contract:
//  - start() begins connecting to every peer; the transport keeps (re)connecting on its own.
//  - Events are delivered from the event loop, never from inside send(): a handler may call
//    send() or abort() from any event.
//  - send() is all-or-nothing. would_block means the message was NOT queued; the caller keeps it
//    and waits for on_writable().
//  - An AssocId is never 0 and never reused within one process.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "src/base/endpoint.hpp"
#include "src/transport/path_auth.hpp"
#include "tun/packet_buf.hpp"

namespace transport {

using PeerId = std::uint32_t;  // index into the peer list given at construction
using AssocId = std::uint64_t;

enum class SendResult { ok, would_block, closed, error };

// How one message is sent: what its flow's policy rule asks for.
struct SendOptions {
  // On every live path to the peer at once (udp transport, a peer with two or more paths; other
  // transports send it once): the first copy to arrive is delivered, SCTP drops the later ones
  // as data it already has. The acknowledgements of the association go on every path as well,
  // so a path that dies takes neither the data nor the acknowledgements with it.
  bool redundant = false;
};

class Events {
 public:
  virtual ~Events() = default;
  // The association is established; out_streams is the number of streams we may send on.
  virtual void on_assoc_up(AssocId assoc, PeerId peer, std::uint16_t out_streams) = 0;
  // The association is gone (lost, aborted, or restarted by the peer: then a new up follows).
  virtual void on_assoc_down(AssocId assoc) = 0;
  // One complete message on a stream, in msg.data(), with headroom in front. The handler may
  // modify msg (strip or prepend headers) but not keep it past the call.
  virtual void on_message(AssocId assoc, std::uint16_t stream, tun::PacketBuf& msg) = 0;
  // Room in a send buffer that returned would_block.
  virtual void on_writable() = 0;
};

// What every SCTP backend takes from [transport] (and [tun] fwmark).
struct SctpOptions {
  std::vector<base::Endpoint> locals;  // addresses to bind, with port
  std::uint16_t sctp_port = 9899;      // SCTP port of pool slot 0, both sides (and the UDP port)
  std::uint16_t streams = 256;         // outbound streams asked for, and inbound accepted
  std::uint32_t rto_initial_ms = 500, rto_min_ms = 100, rto_max_ms = 1000;
  std::uint32_t probe_interval_ms = 50, failover_ms = 150;  // path supervision
  std::uint32_t max_init_attempts = 4;
  int socket_buffer = 16 << 20;  // SCTP send and receive buffer of each association, bytes
  std::uint32_t fwmark = 0;      // SO_MARK of the WAN sockets (0: none)
};

struct PeerEndpoints {
  std::string name;
  std::vector<base::Endpoint> remotes;  // address + UDP port
  std::uint16_t pool = 1;  // associations kept ready (usrsctp: slots on SCTP ports base+0..pool-1)
  // Derived from the peer's pre-shared key: authenticated path probes, and learning the peer's
  // address from them (udp transport). Without it, only the configured remotes are used.
  std::optional<path_auth::PathKey> path_key;
  bool fec = false;  // offer FEC below SCTP to the peer (needs path_key: parity is authenticated)
};

// One path to a peer: a local UDP socket and one of the peer's addresses (udp transport).
struct PathInfo {
  std::string local, remote;   // "192.0.2.1:9899", "192.0.2.2:9899"
  std::string state;           // "up", "down", "unknown" (no probe answered yet)
  bool primary = false;        // the best live path (failover mode: the one that carries traffic)
  bool active = false;         // this association's packets go out on it now
  bool probed = false;         // false: the peer has one path only, state and RTT come from SCTP
  bool learned = false;        // the address was learned from the peer's authenticated traffic
  std::uint32_t srtt_us = 0;   // smoothed probe RTT
  std::uint32_t loss_pct = 0;  // unanswered share of the last probes, 0..100
  std::uint64_t bytes_out = 0, bytes_in = 0;  // SCTP datagrams (UDP payload), not probes
  std::uint64_t datagrams_out = 0, datagrams_in = 0;
  // The path's part in the peer's traffic (path_role): "active" (it carries associations: in
  // failover mode the primary, in aggregate mode one of the live paths the slots spread over),
  // "standby" (up, carries none), "down", "unknown" (no probe answered yet).
  std::string role;
  // Over about the last second (udp transport; 0 otherwise): SCTP datagrams (UDP payload, not
  // probes) in bits per second each way; this path's share of the bytes sent to the peer on all
  // its paths, 0..100 (0 when nothing was sent); of the DATA chunks sent on it, the share that
  // were retransmissions, 0..100 (0 when none was sent).
  std::uint64_t rate_out = 0, rate_in = 0;
  double share_pct = 0, data_loss_pct = 0;
  // The sum of the SCTP congestion windows (bytes) of the peer's associations whose packets go
  // out on this path now; 0 when none does (udp transport).
  std::uint64_t cwnd = 0;
  // FEC below SCTP (udp transport): "" (not agreed with the peer), "off" (agreed, the path never
  // lost anything), "on" (datagrams numbered; parity by the measured loss). Our side: the loss
  // the peer reports on this path before FEC, the parity per data datagram we add, datagrams
  // framed and parity sent. The peer's side, as we receive it: data datagrams, found missing,
  // rebuilt from parity, and left to SCTP (unrecovered).
  std::string fec;
  double fec_loss = 0, fec_redundancy = 0;
  std::uint64_t fec_data_out = 0, fec_parity_out = 0;
  std::uint64_t fec_received = 0, fec_lost = 0, fec_rebuilt = 0, fec_unrecovered = 0;
};

// SCTP's congestion and flow control of one association, as its stack reports them (0: not
// known, e.g. the association is not up). What limits a slow tunnel shows here: a congestion
// window far below the bandwidth-delay product (loss), a peer window near zero (the receiver),
// a send buffer at its limit (more data than the path carries: backpressure).
struct WindowInfo {
  std::uint32_t cwnd = 0;           // congestion window of the primary path, bytes
  std::uint32_t flight_chunks = 0;  // DATA chunks sent and not yet acknowledged
  // DATA chunks received and not yet delivered (a message's fragments waiting for the rest, or
  // a message waiting for an earlier one of its stream): SCTP_STATUS's sstat_penddata.
  std::uint32_t undelivered_chunks = 0;
  std::uint32_t peer_rwnd = 0;      // room the peer's receive window leaves beyond the flight
  std::uint32_t local_rwnd = 0;     // the receive window we advertise
  std::uint64_t send_buffered = 0;  // bytes queued or in flight (counts against send_buffer)
  std::uint32_t send_buffer = 0;    // the association's send buffer limit, bytes
  std::uint32_t rto_ms = 0;
  std::uint32_t data_timeouts = 0;  // retransmission timeouts of DATA (T3-rtx) so far
  std::uint64_t chunks_sent = 0, chunks_retransmitted = 0;  // DATA chunks sent; of them sent again
  // The cap on the congestion window (udp transport, inflight_cap.hpp; 0: none) and what it is
  // made of: the delivery rate measured (bytes per second) and the lowest RTT lately (ms).
  std::uint64_t inflight_cap = 0, delivery_rate = 0;
  std::uint32_t rtt_min_ms = 0;
  std::uint64_t restarts = 0;  // congestion control restarted (after random loss, or stuck low)
};

// PathInfo::role of a path in `state` that carries associations or not.
inline const char* path_role(const std::string& state, bool carries) {
  if (state == "down") return "down";
  if (state == "unknown") return "unknown";
  return carries ? "active" : "standby";
}

struct AssocInfo {
  AssocId id = 0;
  PeerId peer = 0;
  std::string state;       // "connecting", "established"
  std::uint16_t slot = 0;  // index in the peer's association pool
  std::string pool_state;  // the slot's state (assoc_slot.hpp): connecting, ready, draining, closed
  std::string path;        // "192.0.2.1:9899 -> 192.0.2.2:9899"
  std::uint16_t in_streams = 0, out_streams = 0;
  std::uint32_t srtt_ms = 0;
  std::uint64_t sent_messages = 0, sent_bytes = 0;
  std::uint64_t received_messages = 0, received_bytes = 0;
  std::vector<PathInfo> paths;     // every path to the peer, in priority (config) order
  std::uint64_t path_changes = 0;  // failovers + failbacks of the primary path
  // Path MTU (udp transport; 0: unknown): the WAN IP MTU the peer's associations are sized for
  // (the smallest of [transport] path_mtu and the kernel's MTU of each usable path), the MTU this
  // association's SCTP uses (usrsctp spinfo_mtu, without the 12-byte common header), and the
  // largest datagram (UDP payload) sent to the peer with DF since path_mtu was set.
  std::uint32_t path_mtu = 0, sctp_mtu = 0;
  std::uint64_t largest_datagram_at_path_mtu = 0;
  WindowInfo window;
};

struct TransportStats {
  std::uint64_t datagrams_out = 0, datagram_bytes_out = 0;
  std::uint64_t largest_datagram_out = 0;  // bytes of UDP payload; must fit the WAN MTU
  std::uint64_t datagrams_in = 0, datagram_bytes_in = 0;
  std::uint64_t datagrams_unknown_source = 0;  // from an address that is no peer's
  std::uint64_t datagrams_unknown_slot = 0;    // a peer's, for an SCTP port beyond our pool
  std::uint64_t connects_on_peer_init = 0;  // a closed slot connected at once for the peer's INIT
  std::uint64_t datagrams_malformed = 0;
  std::uint64_t datagrams_bad_checksum = 0;  // SCTP CRC32c mismatch
  std::uint64_t send_errors = 0;
  std::uint64_t probes_out = 0, probes_in = 0;  // path probes sent / echoes received
  std::uint64_t probe_echoes_out = 0;           // echoes sent for the peers' probes
  // Address learning (udp transport, peers with a key): probes whose MAC no key of ours made,
  // challenges sent to candidate addresses, paths learned and moved (NAT rebinding, roaming),
  // SCTP packets from a candidate address fed to their association (named by its vtag; only
  // heartbeats), SCTP packets for a peer whose address is not known yet (dropped), and SCTP
  // packets from a candidate address with a chunk that could change their association (data,
  // acknowledgements, control chunks: dropped).
  std::uint64_t probes_unauthenticated = 0, challenges_out = 0, paths_learned = 0, path_moves = 0;
  std::uint64_t datagrams_provisional = 0, datagrams_no_path = 0, datagrams_unproven_control = 0;
  // What the SCTP stack itself refused (usrsctp: process-wide): DATA chunks it already had
  // (a replayed datagram), packets with a wrong verification tag (one from an old or a forged
  // association), packets for no association at all.
  std::uint64_t sctp_duplicate_data = 0, sctp_bad_vtag = 0, sctp_out_of_the_blue = 0;
  // How the SCTP stack recovered lost data (usrsctp: process-wide): DATA chunks sent again, of
  // them by fast retransmit, and retransmission timeouts; DATA the receiver side dropped for want
  // of room (the chunk-queue limit or the receive window).
  std::uint64_t sctp_retransmitted_chunks = 0, sctp_fast_retransmits = 0, sctp_data_timeouts = 0;
  std::uint64_t sctp_receive_drops = 0;
  // Path MTU (udp transport): changes of a peer's path MTU, datagrams the kernel refused as larger
  // than the path MTU it knows (an ICMP lowered it; each triggers a re-check), and datagrams sent
  // as IP fragments: SCTP chunks cut for the old, larger MTU, which SCTP cannot cut again.
  std::uint64_t path_mtu_changes = 0, datagrams_too_big = 0, datagrams_fragmented = 0;
  // FEC below SCTP (udp transport): data datagrams framed and parity datagrams sent; parity,
  // reports received; packets rebuilt from parity and losses left to SCTP; parity and reports
  // whose MAC failed (forged, or another key), malformed FEC datagrams.
  std::uint64_t fec_data_out = 0, fec_parity_out = 0, fec_parity_in = 0, fec_reports_in = 0;
  std::uint64_t fec_rebuilt = 0, fec_unrecovered = 0, fec_forged = 0, fec_malformed = 0;
  // Redundant flows (SendOptions::redundant; udp transport): SCTP packets sent once more on
  // another live path, and DATA chunks that arrived a second time on another path than their
  // first copy (the peer's copies; also a chunk that had arrived, sent again after a failover).
  // SCTP drops the second ones, they never reach the TUN.
  std::uint64_t redundant_copies_out = 0, redundant_copies_in = 0;
};

// How busy an association is for the sender right now: what spreading one flow over several
// associations (one per path) weighs, to send each packet where it arrives first.
struct SendLoad {
  std::size_t path = 0;      // the path its packets go on now (an index of the peer's paths)
  std::uint64_t window = 0;  // bytes it may have in flight now: its congestion window
  double srtt = 0;           // seconds
  std::uint64_t queued = 0;  // bytes given to send() and not yet acknowledged (queued or in flight)
  // Bytes per second acknowledged over about the last RTT; < 0: not measured.
  double delivery_rate = -1;

  // What it drains at is taken to be at most a quarter more than it delivered lately (a path
  // that gets more data delivers more, so the share of a path grows as long as it keeps up),
  // and at least kUnearnedWindow per RTT.
  static constexpr double kDeliveryGain = 1.25;
  static constexpr double kUnearnedWindow = 10 * 1400;

  // How fast it drains, bytes per second, estimated: a window per RTT, bounded by the delivery
  // rate as above. A window not yet earned (a new association's first one, or one that idled) is
  // no measure of the path: a slower path given that much overflows its queue, and a packet lost
  // at the tail of what it was given waits for a retransmission timeout, holding the whole
  // striped flow at the far side.
  double drain_rate() const {
    double rate = static_cast<double>(window) / srtt;
    if (delivery_rate >= 0)
      rate = std::min(rate, std::max(kDeliveryGain * delivery_rate, kUnearnedWindow / srtt));
    return rate;
  }
  // Seconds to drain what it holds plus `size` bytes at a window per RTT: how long it holds back
  // a flow's next packet by its window alone (a light flow's association delivers little and
  // keeps that little in flight, which is no queue; drain_rate would make it one).
  double window_time(std::size_t size) const {
    return static_cast<double>(queued + size) * srtt / static_cast<double>(window);
  }
  // When a message of `size` bytes given now arrives, seconds from now, estimated: once all
  // that it holds (in flight too) has drained, half an RTT later. Pessimistic within the window
  // on purpose: measured, it spread one flow better than taking the window's room as free (data
  // in flight on the longer path makes the far side wait for it).
  double arrival(std::size_t size) const {
    return static_cast<double>(queued + size) / drain_rate() + srtt / 2;
  }
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual void set_events(Events* events) = 0;
  virtual void start() = 0;
  virtual SendResult send(AssocId assoc, std::uint16_t stream, std::span<const std::uint8_t> msg,
                          SendOptions options = {}) = 0;
  // Ends the association (protocol violation, failed handshake); the transport reconnects later.
  virtual void abort(AssocId assoc, const char* reason) = 0;
  virtual std::vector<AssocInfo> associations() const = 0;
  // Both ends offered FEC below SCTP on an association of the peer (HELLO): the transport may
  // frame its datagrams to the peer and add parity (udp transport; others ignore it).
  virtual void set_fec(PeerId /*peer*/, bool /*both_offer*/) {}
  // The association's load (udp transport; others, and associations not up: nullopt). Cheap
  // enough to ask per packet.
  virtual std::optional<SendLoad> send_load(AssocId /*assoc*/) const { return std::nullopt; }
  virtual TransportStats stats() const = 0;
  virtual const char* kind() const = 0;
};

}  // namespace transport
