#pragma once
// Gateway: the data path between the TUN device and the transport.
//
// Outbound (TUN -> peer):
//  1. read_tun() reads a batch of packets from the TUN into PacketBufs with headroom.
//  2. base::packet::parse() checks each one without copying (malformed: dropped, counted).
//  3. Policy::decide() picks tunnel(peer), bypass or drop (longest prefix, protocol, ports).
//     bypass: BypassPath::send() hands the packet to the host's normal routing.
//     drop: counted, and the sender gets an ICMP admin-prohibited error (rate-limited), written
//     into the TUN from the dropped packet's destination address (the kernel would refuse one
//     arriving on the TUN from one of its own addresses).
//  4. FlowTable::lookup_or_open() finds the packet's flow; an unbound flow is bound to a ready
//     association of the peer and the next data stream (StreamCursor).
//  5. gateway::wire::write_packet_header() writes the 1-byte PACKET header into the headroom; a GSO
//     super-packet from a TUN with offloads travels whole as PACKET_GSO with its virtio-net
//     header (one message for up to 64 KB). A header that the peer would refuse
//     (tun::gso::vnet_hdr_matches: a partial checksum elsewhere than the packet's own TCP/UDP
//     header, gso_size below 64, ...) never leaves: tunnel_local() completes the checksum or
//     segments the super-packet here and tunnels the ordinary packets it stands for.
//  6. Transport::send() on the flow's stream. Small packets (Bundle::kMaxInnerPacket) gather in
//     the Bundle first while consecutive ones share the stream; the bundle is sent before any
//     other packet and at the end of the batch, so none waits for company. would_block: the
//     packet and the rest of the batch (or the bundle) stay, TUN reading pauses until
//     on_writable() (backpressure: nothing is dropped).
//
// Inbound (peer -> TUN):
//  1. Transport delivers a message: on_message(assoc, stream, buf).
//  2. gateway::wire::decode(); HELLO completes the handshake of the association; PACKET is accepted
//  only
//     after the peer's HELLO; a BUNDLE is split into its PACKET messages.
//  3. The inner packet is parsed and its length checked, so nothing malformed reaches the TUN;
//     its source must be one the peer may send from (Policy::source_allowed), else it is dropped
//     (source_not_allowed). Only inner packets are checked: an ICMP error passes on its outer
//     source, whatever packet it quotes.
//  4. tun::Device::write(): behind a virtio-net header on a TUN with offloads (PACKET_GSO keeps
//     the sender's; in-order TCP segments of one flow are coalesced into one super-packet,
//     written before anything else and when the loop goes idle), else a PACKET_GSO
//     super-packet is segmented in software first.
//
// Handshake (src/handshake.hpp): on_assoc_up sends our HELLO on stream 0, then AUTH when we hold
// a key; the association carries packets once AssocState::ready(). With sealing, every message
// after AUTH leaves through send_message() as SEALED, and on_message() opens SEALED messages
// before anything else looks at them; nothing unsealed but HELLO and AUTH is accepted.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "policy/policy.hpp"
#include "src/base/event_loop.hpp"
#include "src/base/packet.hpp"
#include "src/base/rate_limit.hpp"
#include "src/codec/header_codec.hpp"
#include "src/gateway/bundle.hpp"
#include "src/gateway/counters.hpp"
#include "src/gateway/flow_table.hpp"
#include "src/gateway/handshake.hpp"
#include "src/gateway/icmp_reply.hpp"
#include "src/gateway/resequencer.hpp"
#include "src/gateway/wire.hpp"
#include "src/transport/transport.hpp"
#include "tun/device.hpp"
#include "tun/gro.hpp"
#include "tun/gso.hpp"
#include "tun/vnet.hpp"

namespace gateway {

// Where bypassed packets go: the host's normal routing without the TUN (tun::Bypass), or a fake.
class BypassPath {
 public:
  virtual ~BypassPath() = default;
  // Sends one IP packet on; false when the host cannot route it.
  virtual bool send(std::span<const std::uint8_t> packet) = 0;
};

struct Options {
  std::vector<std::string> peer_names;  // indexed by transport::PeerId
  std::size_t max_flows = 262144;       // all peers together
  std::size_t max_flows_per_peer = 65536;
  // One inner source address's share of the table; 0: max_flows / 8 (at least 1).
  std::size_t max_flows_per_host = 0;
  gateway::Timeouts flow_timeouts;
  std::size_t batch_size = 64;
  std::uint32_t instance = 0;  // our HELLO instance: random per start
  // Per peer (indexed by PeerId): key, sealing, compression, bundling. Missing: the defaults of
  // PeerSecurity (no key: tests only, the daemon always fills it from the config).
  std::vector<PeerSecurity> peer_security;
  double icmp_per_second = 10, icmp_burst = 20;
  // On a TUN with offloads: consecutive TCP segments of a flow are written as one GSO
  // super-packet (tun/gro.hpp), flushed when the loop goes idle.
  bool gro = true;
};

// At most this many decompressor contexts (about 240 bytes each) per association: 15 MB.
inline constexpr std::size_t kDecompressContexts = 65536;

struct AssocState {
  transport::PeerId peer = 0;
  std::uint16_t out_streams = 0;
  std::unique_ptr<Handshake> handshake;  // never null for a tracked association
  bool hello_sent = false, auth_sent = false;
  bool listed_ready = false;  // in the peer's ready_assocs (from the moment ready() holds)
  bool compress = false;      // both HELLOs announced compression
  bool bundle = false;        // the peer's HELLO announced that it accepts BUNDLE
  gateway::StreamCursor streams;
  std::size_t bound_flows = 0;  // flows of the table bound to this association
  // Header compression state per stream, created on first use. Invariant: a stream's
  // compressor and the peer's decompressor of it start together (association up) and are reset
  // together (CONTEXT_RESET), so no context is used that the other side has not received.
  std::vector<std::unique_ptr<codec::Compressor>> compressors;
  // Decompressor contexts the peer may still make us allocate on this association, all streams
  // together (declared before decompressors: they return their share when destroyed).
  std::size_t decompress_budget = kDecompressContexts;
  std::vector<std::unique_ptr<codec::Decompressor>> decompressors;
  bool ready() const {
    return hello_sent && handshake->peer_hello_received() &&
           (!handshake->needs_auth() || (auth_sent && handshake->peer_authenticated()));
  }
  bool accepts_packets() const;
  codec::Compressor& compressor(std::uint16_t stream);
  codec::Decompressor& decompressor(std::uint16_t stream);
};

struct PeerStatus {
  std::string name;
  std::uint64_t flow_limit_hits = 0;     // new flows refused: the peer's flow limit was reached
  std::uint64_t handshake_failures = 0;  // associations aborted in the handshake (wrong key, ...)
  std::string last_handshake_failure;    // why, and on which path
  base::RateLimit failure_log{10.0};     // of the handshake failure log line
  std::uint64_t source_not_allowed = 0;  // inner packets dropped: a source the peer may not use
  base::RateLimit source_log{10.0};      // of the source_not_allowed log line
  // Of the lines about its associations (ready, could not send): at most 8 per 10 s, so that a
  // pool starting up is logged whole, a peer cycling associations not.
  base::RateLimit assoc_log{10.0, 8};
  std::uint64_t assoc_unlogged = 0;
  std::vector<transport::AssocId> ready_assocs;
  std::uint64_t tx_packets = 0, tx_bytes = 0, rx_packets = 0, rx_bytes = 0;
  std::uint32_t next_stripe = 1;  // the number of the next flow we stripe to this peer (0: none)
};

class Gateway final : public transport::Events {
 public:
  // bypass may be null: bypassed packets are then dropped and counted as bypass_failed.
  Gateway(base::EventLoop& loop, tun::Device& tun, transport::Transport& transport,
          BypassPath* bypass, policy::Policy policy, Options options);
  ~Gateway() override;

  // Reads and forwards TUN packets until the TUN is empty, the send buffer is full, or a
  // fairness bound is reached. Called by the TUN watcher, or directly by tests.
  void read_tun();
  bool tun_paused() const { return pending_begin_ < pending_end_ || !bundle_.empty(); }

  // Takes effect with the next packet (also the peers' allowed sources); flows whose rule still
  // sends them to the same peer keep their association and stream.
  void set_policy(policy::Policy policy) { policy_ = std::move(policy); }
  const policy::Policy& policy() const { return policy_; }
  void set_flow_timeouts(const gateway::Timeouts& timeouts) { flows_.set_timeouts(timeouts); }
  // Removes ended flows now (the timer does it every second).
  void expire_flows();

  void on_assoc_up(transport::AssocId assoc, transport::PeerId peer,
                   std::uint16_t out_streams) override;
  void on_assoc_down(transport::AssocId assoc) override;
  void on_message(transport::AssocId assoc, std::uint16_t stream, tun::PacketBuf& msg) override;
  void on_writable() override;

  const gateway::Counters& counters() const { return counters_; }
  const std::vector<PeerStatus>& peers() const { return peers_; }
  const std::unordered_map<transport::AssocId, AssocState>& assocs() const { return assocs_; }
  const gateway::FlowTable& flow_table() const { return flows_; }
  const Resequencer::Stats& resequencer_stats() const { return resequencer_.stats(); }

 private:
  enum class Outcome { sent, dropped, blocked };
  Outcome forward(tun::PacketBuf& buf);
  // vnet: the packet's virtio-net header when it is a GSO super-packet or has a partial checksum.
  Outcome forward_packet(tun::PacketBuf& buf, const std::optional<tun::VnetHdr>& vnet);
  // decision: the policy's, a tunnel to its peer.
  Outcome tunnel(tun::PacketBuf& buf, const base::packet::PacketView& view,
                 const policy::Decision& decision, const std::optional<tun::VnetHdr>& vnet);
  // tunnel() of a packet whose header vnet the peer would refuse: each packet that
  // Segmenter::segment_local() makes of it (checksum completed, super-packet segmented) is
  // tunneled as an ordinary packet of the same flow, in order. Blocked: see local_done_.
  // Dropped as tun_malformed when even segment_local() refuses the packet.
  Outcome tunnel_local(tun::PacketBuf& buf, const policy::Decision& decision,
                       const tun::VnetHdr& vnet);
  Outcome tunnel_bundled(tun::PacketBuf& buf, const base::packet::PacketView& view,
                         gateway::Flow& flow, AssocState& state);
  // Sends the bundle; false (and the bundle kept) when the transport would block.
  bool flush_bundle();
  void count_tunneled(gateway::Flow& flow, std::size_t inner_size);
  Outcome bypass(tun::PacketBuf& buf, const std::optional<tun::VnetHdr>& vnet);
  void send_unreachable(const base::packet::PacketView& dropped);
  // Writes one packet (with vnet: a super-packet) in the form the TUN takes: behind a virtio-net
  // header if the TUN has them, else segmented in software. Uses packet's headroom.
  bool write_tun(tun::PacketBuf& packet, const std::optional<tun::VnetHdr>& vnet);
  void flush_gro();
  void write_super(const tun::PacketBuf& super);  // what the coalescer took
  void count_compression(const base::packet::PacketView& view, std::size_t original_len,
                         std::size_t encoded_len);
  static std::size_t l4_header_len(const base::packet::PacketView& view);
  // Forwards batch_[pending_begin_, pending_end_); stops at the first blocked packet.
  void drain_pending();
  bool bind_flow(gateway::Flow& flow);
  // Logs (at most once per 10 s) that a flow limit was hit: a flow evicted, or the new one refused.
  // why: the limit that refused the flow (ok: a flow was evicted to make room); key: the new flow.
  void note_flow_limit(transport::PeerId peer, const base::packet::FlowKey& key, OpenResult why);
  // Counts (per peer too) and logs, at most once per 10 s per peer, an inner packet dropped
  // because the peer may not send from its source.
  void note_source_not_allowed(transport::PeerId peer, const base::packet::PacketView& view);
  // Whether view is an ICMP / ICMPv6 error about a packet that went to peer's side (see
  // gateway_inbound.cpp): it passes whatever its source.
  bool reports_on_packet_to(transport::PeerId peer, const base::packet::PacketView& view) const;
  // Sends what of HELLO and AUTH is due; marks the association ready when it becomes so.
  void advance_handshake(transport::AssocId assoc, AssocState& state);
  void handle_hello(transport::AssocId assoc, AssocState& state, std::span<const std::uint8_t> msg);
  void handle_auth(transport::AssocId assoc, AssocState& state, std::span<const std::uint8_t> msg);
  void fail_handshake(transport::AssocId assoc, AssocState& state, const std::string& reason);
  // Every message to a peer leaves here: sealed when the association seals.
  transport::SendResult send_message(transport::AssocId assoc, AssocState& state,
                                     std::uint16_t stream, std::span<const std::uint8_t> msg,
                                     transport::SendOptions options = {});
  // Opens a SEALED message in place (msg becomes the inner message); false: dropped, counted.
  bool unseal(AssocState& state, std::uint16_t stream, tun::PacketBuf& msg);
  const PeerSecurity& security(transport::PeerId peer) const;
  // sequenced: the packet is one of a striped flow (SEQUENCED): it goes to the resequencer.
  void handle_packet(transport::AssocId assoc, AssocState& state, std::uint16_t stream,
                     tun::PacketBuf& msg, gateway::wire::PacketForm form,
                     const gateway::wire::Sequenced* sequenced = nullptr);
  // Striped flows: gateway_stripe.cpp.
  void handle_sequenced(transport::AssocId assoc, AssocState& state, std::uint16_t stream,
                        tun::PacketBuf& msg);
  void resequence(const AssocState& state, const gateway::wire::Sequenced& sequenced,
                  tun::PacketBuf& packet, const std::optional<tun::VnetHdr>& vnet);
  void expire_resequencer();
  // The association a packet of `size` bytes of flow should go on, striped: of the peer's ready
  // associations that agreed striping, the one where it would arrive first. 0: not striped.
  transport::AssocId stripe_target(const gateway::Flow& flow, std::size_t size) const;
  void handle_bundle(transport::AssocId assoc, AssocState& state, std::uint16_t stream,
                     std::span<const std::uint8_t> msg);
  void handle_context_reset(AssocState& state, std::span<const std::uint8_t> msg);
  void update_tun_watch();

  base::EventLoop& loop_;
  tun::Device& tun_;
  transport::Transport& transport_;
  BypassPath* bypass_;
  policy::Policy policy_;
  Options options_;
  gateway::Counters counters_;
  gateway::FlowTable flows_;
  std::size_t next_bind_ = 0;             // rotates the first candidate of bind_flow among equals
  base::RateLimit flow_limit_log_{10.0};  // of the "flow limit reached" line
  std::unordered_map<transport::AssocId, AssocState> assocs_;
  std::vector<PeerStatus> peers_;  // indexed by PeerId
  // Packets read from the TUN live here until sent. Invariant: [pending_begin_, pending_end_)
  // are read but not yet sent; while non-empty, TUN reading is paused.
  std::vector<tun::PacketBuf> batch_;
  std::size_t pending_begin_ = 0, pending_end_ = 0;
  // Of the packets that Segmenter::segment_local() makes of the packet being forwarded, how many
  // are done (tunneled, bypassed or dropped and counted). Contract with drain_pending(): a
  // blocked packet is retried from the start and nothing else is forwarded before it, so when
  // the transport blocks in the middle of a super-packet, local_done_ stays at the first packet
  // not sent and the retry resumes there (segment_local() makes the same packets of the same,
  // unchanged input): none is sent twice, none is lost. forward() resets it to 0 once a packet
  // is done (not blocked).
  std::size_t local_done_ = 0;
  tun::PacketBuf local_packet_;  // one packet of segment_local() on its way into the tunnel
  std::unique_ptr<base::IoWatcher> tun_watch_;  // absent for devices without fd (fakes)
  base::Timer expiry_timer_;
  gateway::icmp::RateLimiter icmp_limit_;
  tun::PacketBuf icmp_buf_;
  tun::gso::Segmenter segmenter_;  // peers' super-packets on their way into a TUN without offloads
  // Packets from our TUN on their way out (bypass, tunnel_local). Apart from segmenter_, so that
  // a transport delivering a message from inside send() could not reenter a Segmenter.
  tun::gso::Segmenter out_segmenter_;
  tun::gro::Coalescer gro_;      // TCP segments on their way into the TUN, as one super-packet
  base::BeforeBlock gro_flush_;  // after the transport's: what it delivered is written too
  tun::PacketBuf scratch_;       // one software-segmented packet on its way into the TUN
  // Small packets read but not yet sent. Invariant: flushed before any other tunnel send and
  // before TUN reading resumes; while non-empty, TUN reading is paused.
  Bundle bundle_;
  tun::PacketBuf bundle_item_;        // one item of a received BUNDLE on its way into the TUN
  std::vector<std::uint8_t> sealed_;  // the SEALED form of the message being sent
  // Striped flows from the peers, back in order (gateway_stripe.cpp).
  Resequencer resequencer_;
  tun::PacketBuf resequenced_;  // one packet on its way from the resequencer into the TUN
  base::Timer resequencer_timer_;
  bool resequencer_timer_on_ = false;
};

}  // namespace gateway
