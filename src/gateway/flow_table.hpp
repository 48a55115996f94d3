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
// Limits: when the table (or a peer's share, or one inside host's share) is full, a new flow
// evicts the oldest flow that is not established (no packet back yet, or for TCP fewer than two
// packets out: a SYN flood's flows) or is closing; established flows are never evicted, so a
// flood from inside cannot push out the connections that work. With no such victim the new flow
// is refused. The per-host share (by inner source address) keeps one inside host from filling the
// table with established flows that only their idle timeout would end: at its share a host's new
// flow evicts that host's own oldest evictable flow, else it is refused.
//
// Cost: every operation on one flow is O(1) on average (hash lookups and intrusive lists);
// expire() visits only the deadline buckets of the seconds that passed since its last call.

#include <climits>
#include <cstddef>
#include <cstdint>
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
  bool redundant = false;                // its rule says redundant: sent on every live path
  // Striped (SEQUENCED over several associations; 0: not): its number for the peer, and the seq
  // of its next packet.
  std::uint32_t stripe = 0, next_seq = 0;
  double last_seen = 0;
  double ends_at = 0;  // expire() removes the flow once now > ends_at
  std::uint64_t packets = 0, bytes = 0;
};

enum class OpenResult : std::uint8_t { ok, table_full, peer_limit, host_limit };

class FlowTable {
 public:
  // max_flows: all peers together; max_per_peer: one peer's share; max_per_host: one inner source
  // address's share (0: none, max_flows is the limit).
  FlowTable(std::size_t max_flows, std::size_t max_per_peer, Timeouts timeouts = {},
            std::size_t max_per_host = 0);
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  // The flow of key, opened (unbound) if new, its idle deadline pushed out. nullptr when a limit
  // is hit (why in `result`); the caller drops the packet and counts it.
  // Invariants: size() <= max_flows; per peer <= max_per_peer; per source address <=
  // max_per_host.
  // A flow that the policy now sends to another peer (reload) starts over there, unbound: on_remove
  // is called first with the flow as it was, so its old association can let go of it.
  Flow* lookup_or_open(const base::packet::FlowKey& key, transport::PeerId peer, double now,
                       OpenResult* result = nullptr);
  // Notes TCP flags of a packet of the flow (outbound: key as sent; inbound: the reply's key,
  // reversed here). RST, or FIN both ways, end the flow after the linger.
  void note_tcp_flags(const base::packet::FlowKey& key, std::uint8_t flags, bool outbound,
                      double now);
  // Notes a packet that came back (key as received: reversed here); no-op for unknown flows.
  void note_inbound(const base::packet::FlowKey& key);
  // Called for every flow that expire() removes or that a new flow evicts, before it goes, and
  // for a flow that moves to another peer, before it is reset (see lookup_or_open).
  void set_on_remove(std::function<void(const base::packet::FlowKey&, const Flow&)> on_remove) {
    on_remove_ = std::move(on_remove);
  }
  std::uint64_t evicted() const { return evicted_; }
  // Unbinds every flow of assoc, so its next packet picks a live association.
  void unbind_assoc(transport::AssocId assoc);
  // Removes ended flows (calling on_remove for each first); returns how many. Exactly the flows
  // with now > ends_at go, as long as now never decreases from one call (or lookup) to the next.
  std::size_t expire(double now);

  std::size_t size() const { return flows_.size(); }
  std::size_t max_flows() const { return max_flows_; }
  std::size_t max_per_host() const { return max_per_host_; }
  std::size_t count_of_peer(transport::PeerId peer) const {
    return peer < peers_.size() ? peers_[peer].count : 0;
  }
  // Flows whose inner source address is that of key (ports, destination, protocol ignored).
  std::size_t count_of_host(const base::packet::FlowKey& key) const;
  std::size_t count_bound_to(transport::AssocId assoc) const;
  void set_timeouts(const Timeouts& timeouts) { timeouts_ = timeouts; }

 private:
  struct Node;
  struct Link {
    Node* prev = nullptr;
    Node* next = nullptr;
  };
  // A doubly linked list threaded through the nodes by their member link L.
  template <Link Node::*L>
  struct List {
    Node* head = nullptr;
    Node* tail = nullptr;
    void push_back(Node* n);
    void unlink(Node* n);
  };
  struct HostState;
  struct Node {
    Flow flow;
    const base::packet::FlowKey* key = nullptr;  // the map's own key of this node
    HostState* host = nullptr;
    std::int64_t due_second = 0;  // the deadline bucket it is in
    bool candidate = false;       // in its peer's and its host's eviction lists
    Link expiry, by_peer, by_host;
  };
  using ExpiryList = List<&Node::expiry>;
  using PeerList = List<&Node::by_peer>;
  using HostList = List<&Node::by_host>;
  struct PeerState {
    std::size_t count = 0;
    PeerList candidates;  // evictable flows, oldest first (opened, or started closing)
  };
  struct HostState {
    std::size_t count = 0;
    HostList candidates;
  };
  // Deadline buckets: one per second, kBuckets of them used round: a flow sits in the bucket of
  // the second its ends_at falls in (or of the last expired second, if that is later). A bucket
  // can also hold flows due kBuckets seconds (or a multiple) later; expire() skips those.
  static constexpr std::int64_t kBuckets = 1024;

  static bool evictable(const Flow& flow) {
    return !flow.established || (flow.fin_out && flow.fin_in);
  }
  static base::packet::FlowKey host_key(const base::packet::FlowKey& key);
  ExpiryList& bucket(std::int64_t second) {
    return buckets_[static_cast<std::size_t>(((second % kBuckets) + kBuckets) % kBuckets)];
  }
  // Moves n to the bucket of its (changed) ends_at.
  void schedule(Node& n);
  // Puts n on, or takes it off, its peer's and host's eviction lists as evictable() says.
  void update_candidate(Node& n);
  void evict(Node* n);
  void remove(Node* n);

  std::size_t max_flows_, max_per_peer_, max_per_host_;
  Timeouts timeouts_;
  std::unordered_map<base::packet::FlowKey, Node> flows_;
  std::vector<PeerState> peers_;  // by peer id
  // By source address (host_key); an entry lives while the host has flows.
  std::unordered_map<base::packet::FlowKey, HostState> hosts_;
  std::vector<ExpiryList> buckets_;
  std::int64_t expired_second_ = INT64_MIN;  // the second of the last expire()
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
