#include "src/flow_table.hpp"

#include <netinet/in.h>

#include <algorithm>

namespace flows {
namespace {
constexpr std::uint8_t kFin = 0x01, kRst = 0x04;

packet::FlowKey reversed(const packet::FlowKey& key) {
  packet::FlowKey r = key;
  std::swap(r.src, r.dst);
  std::swap(r.src_port, r.dst_port);
  return r;
}
}  // namespace

double Timeouts::idle_for(std::uint8_t protocol) const {
  if (protocol == IPPROTO_TCP) return tcp_idle;
  if (protocol == IPPROTO_UDP) return udp_idle;
  return other_idle;
}

Flow* FlowTable::lookup_or_open(const packet::FlowKey& key, transport::PeerId peer, double now,
                                OpenResult* result) {
  if (result) *result = OpenResult::ok;
  if (per_peer_.size() <= peer) per_peer_.resize(std::size_t{peer} + 1);
  auto it = flows_.find(key);
  if (it == flows_.end()) {
    OpenResult refused = flows_.size() >= max_flows_        ? OpenResult::table_full
                         : per_peer_[peer] >= max_per_peer_ ? OpenResult::peer_limit
                                                            : OpenResult::ok;
    if (refused != OpenResult::ok) {
      if (result) *result = refused;
      return nullptr;
    }
    it = flows_.emplace(key, Flow{}).first;
    it->second.peer = peer;
    it->second.protocol = key.protocol;
    ++per_peer_[peer];
  } else if (it->second.peer != peer) {
    // The policy now sends this flow to another peer (reload): rebind it there.
    --per_peer_[it->second.peer];
    ++per_peer_[peer];
    Flow moved;
    moved.peer = peer;
    moved.protocol = key.protocol;
    it->second = moved;
  }
  Flow& flow = it->second;
  flow.last_seen = now;
  bool closing = flow.ends_at > 0 && (flow.fin_out && flow.fin_in);
  if (!closing) flow.ends_at = now + timeouts_.idle_for(flow.protocol);
  return &flow;
}

void FlowTable::note_tcp_flags(const packet::FlowKey& key, std::uint8_t flags, bool outbound, double now) {
  if (!(flags & (kFin | kRst))) return;
  auto it = flows_.find(outbound ? key : reversed(key));
  if (it == flows_.end()) return;
  Flow& flow = it->second;
  if (flags & kFin) (outbound ? flow.fin_out : flow.fin_in) = true;
  if ((flags & kRst) || (flow.fin_out && flow.fin_in)) {
    flow.fin_out = flow.fin_in = true;  // closing: later packets no longer extend its life
    flow.ends_at = std::min(flow.ends_at, now + timeouts_.linger);
  }
}

void FlowTable::unbind_assoc(transport::AssocId assoc) {
  for (auto& [key, flow] : flows_) {
    if (flow.assoc == assoc) {
      flow.assoc = 0;
      flow.stream = 0;
    }
  }
}

std::size_t FlowTable::expire(double now, const std::function<void(const packet::FlowKey&, const Flow&)>& on_remove) {
  std::size_t removed = 0;
  for (auto it = flows_.begin(); it != flows_.end();) {
    if (now <= it->second.ends_at) {
      ++it;
      continue;
    }
    if (on_remove) on_remove(it->first, it->second);
    --per_peer_[it->second.peer];
    it = flows_.erase(it);
    ++removed;
  }
  return removed;
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
