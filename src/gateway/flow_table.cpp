#include "src/gateway/flow_table.hpp"

#include <netinet/in.h>

#include <algorithm>

namespace gateway {
namespace {
constexpr std::uint8_t kFin = 0x01, kRst = 0x04;

base::packet::FlowKey reversed(const base::packet::FlowKey& key) {
  base::packet::FlowKey r = key;
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

Flow* FlowTable::lookup_or_open(const base::packet::FlowKey& key, transport::PeerId peer,
                                double now, OpenResult* result) {
  if (result) *result = OpenResult::ok;
  if (per_peer_.size() <= peer) {
    per_peer_.resize(std::size_t{peer} + 1);
    candidates_.resize(std::size_t{peer} + 1);
  }
  auto it = flows_.find(key);
  if (it == flows_.end()) {
    // Full: make room by evicting a flow that is not established (the peer's own first).
    if (per_peer_[peer] >= max_per_peer_ && !evict_one(peer, key)) {
      if (result) *result = OpenResult::peer_limit;
      return nullptr;
    }
    if (flows_.size() >= max_flows_ && !evict_one(peer, key) && !evict_one(kAnyPeer, key)) {
      if (result) *result = OpenResult::table_full;
      return nullptr;
    }
    it = flows_.emplace(key, Flow{}).first;
    it->second.peer = peer;
    it->second.protocol = key.protocol;
    ++per_peer_[peer];
    candidates_[peer].push_back(key);
  } else if (it->second.peer != peer) {
    // The policy now sends this flow to another peer (reload): rebind it there.
    --per_peer_[it->second.peer];
    ++per_peer_[peer];
    Flow moved;
    moved.peer = peer;
    moved.protocol = key.protocol;
    it->second = moved;
    candidates_[peer].push_back(key);
  }
  Flow& flow = it->second;
  flow.last_seen = now;
  if (!flow.established && flow.inbound_seen && (flow.protocol != IPPROTO_TCP || flow.packets >= 1))
    flow.established = true;  // this is (at least) the second packet out, after one came back
  bool closing = flow.ends_at > 0 && (flow.fin_out && flow.fin_in);
  if (!closing) flow.ends_at = now + timeouts_.idle_for(flow.protocol);
  return &flow;
}

void FlowTable::note_tcp_flags(const base::packet::FlowKey& key, std::uint8_t flags, bool outbound,
                               double now) {
  if (!(flags & (kFin | kRst))) return;
  auto it = flows_.find(outbound ? key : reversed(key));
  if (it == flows_.end()) return;
  Flow& flow = it->second;
  if (flags & kFin) (outbound ? flow.fin_out : flow.fin_in) = true;
  if ((flags & kRst) || (flow.fin_out && flow.fin_in)) {
    if (!(flow.fin_out && flow.fin_in)) candidates_[flow.peer].push_back(it->first);
    flow.fin_out = flow.fin_in = true;  // closing: later packets no longer extend its life
    flow.ends_at = std::min(flow.ends_at, now + timeouts_.linger);
  }
}

void FlowTable::note_inbound(const base::packet::FlowKey& key) {
  auto it = flows_.find(reversed(key));
  if (it == flows_.end()) return;
  Flow& flow = it->second;
  flow.inbound_seen = true;
  if (flow.protocol != IPPROTO_TCP || flow.packets >= 2) flow.established = true;
}

bool FlowTable::evict_one(transport::PeerId peer, const base::packet::FlowKey& keep) {
  for (std::size_t p = 0; p < candidates_.size(); ++p) {
    if (peer != kAnyPeer && p != peer) continue;
    std::deque<base::packet::FlowKey>& queue = candidates_[p];
    while (!queue.empty()) {
      base::packet::FlowKey key = queue.front();
      queue.pop_front();
      auto it = flows_.find(key);
      if (it == flows_.end() || key == keep || it->second.peer != p || !evictable(it->second))
        continue;
      remove(it);
      ++evicted_;
      return true;
    }
  }
  return false;
}

void FlowTable::remove(std::unordered_map<base::packet::FlowKey, Flow>::iterator it) {
  if (on_remove_) on_remove_(it->first, it->second);
  --per_peer_[it->second.peer];
  flows_.erase(it);
}

void FlowTable::unbind_assoc(transport::AssocId assoc) {
  for (auto& [key, flow] : flows_) {
    if (flow.assoc == assoc) {
      flow.assoc = 0;
      flow.stream = 0;
    }
  }
}

std::size_t FlowTable::expire(double now) {
  std::size_t removed = 0;
  for (auto it = flows_.begin(); it != flows_.end();) {
    if (now <= it->second.ends_at) {
      ++it;
      continue;
    }
    if (on_remove_) on_remove_(it->first, it->second);
    --per_peer_[it->second.peer];
    it = flows_.erase(it);
    ++removed;
  }
  for (std::deque<base::packet::FlowKey>& queue : candidates_) {
    std::erase_if(queue, [this](const base::packet::FlowKey& key) {
      auto it = flows_.find(key);
      return it == flows_.end() || !evictable(it->second);
    });
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

}  // namespace gateway
