#pragma once
// FlowTable: the tunneled flows, keyed by 5-tuple. A flow is pinned to one (association, stream)
// for its life so its packets stay in order and one flow's loss never stalls another's.
//
// Lifecycle: a flow opens with its first outbound packet and ends
//  - after a TCP RST in either direction, or FINs in both directions, plus a short linger
//    (late retransmissions and the last ACK still find their stream);
//  - or after an idle timeout that depends on the protocol (TCP, UDP, others).
// expire() removes ended flows; their stream slots are then free for new flows.
//
// Limits: when the table (or a peer's share) is full, a new flow evicts the oldest flow that is
// not established (no packet back yet, or for TCP fewer than two packets out: a SYN flood's
// flows) or is closing; established flows are never evicted, so a flood from inside cannot push
// out the connections that work. With no such victim the new flow is refused.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <unordered_map>
#include <vector>

#include "src/base/packet.hpp"
#include "src/transport/transport.hpp"

namespace gateway {

struct Timeouts {
  double tcp_idle = 600, udp_idle = 60, other_idle = 30;  // seconds without a packet
  double linger = 2;                                      // after RST, or FIN both ways
  double idle_for(std::uint8_t protocol) const;
};

struct Flow {
  transport::PeerId peer = 0;
  transport::AssocId assoc = 0;  // 0: not (or no longer) bound to an association
  std::uint16_t stream = 0;      // valid while assoc != 0; never the control stream
  std::uint8_t protocol = 0;
  bool fin_out = false, fin_in = false;  // TCP FIN seen leaving / arriving
  bool inbound_seen = false;             // a packet of the flow came back through the tunnel
  bool established = false;              // inbound seen, and for TCP two or more packets out
  double last_seen = 0;
  double ends_at = 0;  // expire() removes the flow once now > ends_at
  std::uint64_t packets = 0, bytes = 0;
};

enum class OpenResult : std::uint8_t { ok, table_full, peer_limit };

class FlowTable {
 public:
  // max_flows: all peers together; max_per_peer: one peer's share.
  FlowTable(std::size_t max_flows, std::size_t max_per_peer, Timeouts timeouts = {})
      : max_flows_(max_flows), max_per_peer_(max_per_peer), timeouts_(timeouts) {}

  // The flow of key, opened (unbound) if new, its idle deadline pushed out. nullptr when a limit
  // is hit (why in `result`); the caller drops the packet and counts it.
  // Invariants: size() <= max_flows; per peer <= max_per_peer.
  Flow* lookup_or_open(const base::packet::FlowKey& key, transport::PeerId peer, double now,
                       OpenResult* result = nullptr);
  // Notes TCP flags of a packet of the flow (outbound: key as sent; inbound: the reply's key,
  // reversed here). RST, or FIN both ways, end the flow after the linger.
  void note_tcp_flags(const base::packet::FlowKey& key, std::uint8_t flags, bool outbound,
                      double now);
  // Notes a packet that came back (key as received: reversed here); no-op for unknown flows.
  void note_inbound(const base::packet::FlowKey& key);
  // Called for every flow that expire() removes or that a new flow evicts, before it goes.
  void set_on_remove(std::function<void(const base::packet::FlowKey&, const Flow&)> on_remove) {
    on_remove_ = std::move(on_remove);
  }
  std::uint64_t evicted() const { return evicted_; }
  // Unbinds every flow of assoc, so its next packet picks a live association.
  void unbind_assoc(transport::AssocId assoc);
  // Removes ended flows (calling on_remove for each first); returns how many.
  std::size_t expire(double now);

  std::size_t size() const { return flows_.size(); }
  std::size_t max_flows() const { return max_flows_; }
  std::size_t count_of_peer(transport::PeerId peer) const {
    return peer < per_peer_.size() ? per_peer_[peer] : 0;
  }
  std::size_t count_bound_to(transport::AssocId assoc) const;
  void set_timeouts(const Timeouts& timeouts) { timeouts_ = timeouts; }

 private:
  // Evicts one evictable flow of peer (any peer if peer is kAnyPeer); false if there is none.
  bool evict_one(transport::PeerId peer, const base::packet::FlowKey& keep);
  static constexpr transport::PeerId kAnyPeer = ~transport::PeerId{0};
  void remove(std::unordered_map<base::packet::FlowKey, Flow>::iterator it);
  static bool evictable(const Flow& flow) {
    return !flow.established || (flow.fin_out && flow.fin_in);
  }

  std::size_t max_flows_, max_per_peer_;
  Timeouts timeouts_;
  std::unordered_map<base::packet::FlowKey, Flow> flows_;
  std::vector<std::size_t> per_peer_;  // flows per peer id
  // Eviction candidates per peer, oldest first: every flow when it opens and again when it
  // starts closing. Entries whose flow is gone or established are skipped when popped and
  // pruned by expire(), so a queue holds at most about two entries per live flow.
  std::vector<std::deque<base::packet::FlowKey>> candidates_;
  std::function<void(const base::packet::FlowKey&, const Flow&)> on_remove_;
  std::uint64_t evicted_ = 0;
};

// Hands out the data streams of one association round-robin (stream 0 is the control stream).
// When there are more flows than streams, flows share streams.
class StreamCursor {
 public:
  explicit StreamCursor(std::uint16_t out_streams = 0) : out_streams_(out_streams) {}
  // A data stream in [1, out_streams); 0 if the association has no data stream.
  std::uint16_t next();

 private:
  std::uint16_t out_streams_;
  std::uint16_t last_ = 0;
};

}  // namespace gateway
