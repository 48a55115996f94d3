#include "src/flow_table.hpp"

namespace flows {

Flow* FlowTable::lookup_or_open(const packet::FlowKey& key, transport::PeerId peer, double now) {
  auto it = flows_.find(key);
  if (it == flows_.end()) {
    if (flows_.size() >= max_flows_) return nullptr;
    it = flows_.emplace(key, Flow{}).first;
    it->second.peer = peer;
  } else if (it->second.peer != peer) {
    // The policy now sends this flow to another peer (reload): rebind it there.
    it->second = Flow{};
    it->second.peer = peer;
  }
  it->second.last_seen = now;
  return &it->second;
}

void FlowTable::unbind_assoc(transport::AssocId assoc) {
  for (auto& [key, flow] : flows_) {
    if (flow.assoc == assoc) {
      flow.assoc = 0;
      flow.stream = 0;
    }
  }
}

std::size_t FlowTable::expire(double now, double idle_seconds) {
  return std::erase_if(
      flows_, [&](const auto& entry) { return now - entry.second.last_seen > idle_seconds; });
}

std::size_t FlowTable::count_bound_to(transport::AssocId assoc) const {
  std::size_t n = 0;
  for (const auto& [key, flow] : flows_) n += flow.assoc == assoc;
  return n;
}

std::uint16_t StreamCursor::next() {
  if (out_streams_ < 2) return 0;
  last_ = static_cast<std::uint16_t>(last_ % (out_streams_ - 1) + 1);
  return last_;
}

}  // namespace flows
