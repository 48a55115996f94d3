#pragma once
// FlowTable: the tunneled flows, keyed by 5-tuple. A flow is pinned to one (association, stream)
// for its life so its packets stay in order and one flow's loss never stalls another's.

#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "src/packet.hpp"
#include "src/transport.hpp"

namespace flows {

struct Flow {
  transport::PeerId peer = 0;
  transport::AssocId assoc = 0;  // 0: not (or no longer) bound to an association
  std::uint16_t stream = 0;      // valid while assoc != 0; never the control stream
  double last_seen = 0;
  std::uint64_t packets = 0, bytes = 0;
};

class FlowTable {
 public:
  explicit FlowTable(std::size_t max_flows) : max_flows_(max_flows) {}

  // The flow of key, opened (unbound) if new. nullptr when the table is full; the caller drops
  // the packet and counts it. Invariant: size() <= max_flows.
  Flow* lookup_or_open(const packet::FlowKey& key, transport::PeerId peer, double now);
  // Unbinds every flow of assoc, so its next packet picks a live association.
  void unbind_assoc(transport::AssocId assoc);
  // Removes flows idle for longer than idle_seconds; returns how many.
  std::size_t expire(double now, double idle_seconds);

  std::size_t size() const { return flows_.size(); }
  std::size_t max_flows() const { return max_flows_; }
  std::size_t count_bound_to(transport::AssocId assoc) const;

 private:
  std::size_t max_flows_;
  std::unordered_map<packet::FlowKey, Flow> flows_;
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

}  // namespace flows
