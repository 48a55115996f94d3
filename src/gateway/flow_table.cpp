#include "src/gateway/flow_table.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <cmath>

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

template <FlowTable::Link FlowTable::Node::*L>
void FlowTable::List<L>::push_back(Node* n) {
  (n->*L).prev = tail;
  (n->*L).next = nullptr;
  (tail ? (tail->*L).next : head) = n;
  tail = n;
}

template <FlowTable::Link FlowTable::Node::*L>
void FlowTable::List<L>::unlink(Node* n) {
  Link& link = n->*L;
  (link.prev ? (link.prev->*L).next : head) = link.next;
  (link.next ? (link.next->*L).prev : tail) = link.prev;
  link = Link{};
}

FlowTable::FlowTable(std::size_t max_flows, std::size_t max_per_peer, Timeouts timeouts,
                     std::size_t max_per_host)
    : max_flows_(max_flows),
      max_per_peer_(max_per_peer),
      max_per_host_(max_per_host ? max_per_host : SIZE_MAX),
      timeouts_(timeouts),
      buckets_(kBuckets) {}

base::packet::FlowKey FlowTable::host_key(const base::packet::FlowKey& key) {
  base::packet::FlowKey host;
  host.src = key.src;
  host.version = key.version;
  return host;
}

std::size_t FlowTable::count_of_host(const base::packet::FlowKey& key) const {
  auto it = hosts_.find(host_key(key));
  return it == hosts_.end() ? 0 : it->second.count;
}

void FlowTable::schedule(Node& n) {
  std::int64_t second =
      std::max(static_cast<std::int64_t>(std::floor(n.flow.ends_at)), expired_second_);
  if (second == n.due_second) return;
  bucket(n.due_second).unlink(&n);
  n.due_second = second;
  bucket(second).push_back(&n);
}

void FlowTable::update_candidate(Node& n) {
  bool wanted = evictable(n.flow);
  if (wanted == n.candidate) return;
  n.candidate = wanted;
  if (wanted) {
    peers_[n.flow.peer].candidates.push_back(&n);
    n.host->candidates.push_back(&n);
  } else {
    peers_[n.flow.peer].candidates.unlink(&n);
    n.host->candidates.unlink(&n);
  }
}

Flow* FlowTable::lookup_or_open(const base::packet::FlowKey& key, transport::PeerId peer,
                                double now, OpenResult* result) {
  if (result) *result = OpenResult::ok;
  if (peers_.size() <= peer) peers_.resize(std::size_t{peer} + 1);
  auto it = flows_.find(key);
  if (it == flows_.end()) {
    // Full: make room by evicting a flow that is not established: the host's own at its share,
    // the peer's own at its share, the peer's own first and then any peer's in a full table.
    const base::packet::FlowKey host_of_key = host_key(key);
    HostState& host = hosts_[host_of_key];
    ++host.count;  // the new flow counts already, so the entry stays while flows are evicted
    auto refuse = [&](OpenResult why) -> Flow* {
      if (--host.count == 0) hosts_.erase(host_of_key);
      if (result) *result = why;
      return nullptr;
    };
    if (host.count > max_per_host_) {
      if (!host.candidates.head) return refuse(OpenResult::host_limit);
      evict(host.candidates.head);
    }
    if (peers_[peer].count >= max_per_peer_) {
      if (!peers_[peer].candidates.head) return refuse(OpenResult::peer_limit);
      evict(peers_[peer].candidates.head);
    }
    if (flows_.size() >= max_flows_) {
      Node* victim = peers_[peer].candidates.head;
      for (std::size_t p = 0; !victim && p < peers_.size(); ++p) victim = peers_[p].candidates.head;
      if (!victim) return refuse(OpenResult::table_full);
      evict(victim);
    }
    it = flows_.try_emplace(key).first;
    Node& n = it->second;
    n.key = &it->first;
    n.host = &host;
    n.flow.peer = peer;
    n.flow.protocol = key.protocol;
    ++peers_[peer].count;
    n.flow.ends_at = now + timeouts_.idle_for(n.flow.protocol);
    n.due_second = std::max(static_cast<std::int64_t>(std::floor(n.flow.ends_at)), expired_second_);
    bucket(n.due_second).push_back(&n);
    update_candidate(n);
  } else if (it->second.flow.peer != peer) {
    // The policy now sends this flow to another peer (reload): its old association lets go of
    // it (on_remove), and it starts over there as a new flow, unbound.
    Node& n = it->second;
    if (on_remove_) on_remove_(it->first, n.flow);
    if (n.candidate) {
      peers_[n.flow.peer].candidates.unlink(&n);
      n.host->candidates.unlink(&n);
      n.candidate = false;
    }
    --peers_[n.flow.peer].count;
    ++peers_[peer].count;
    Flow moved;
    moved.peer = peer;
    moved.protocol = key.protocol;
    moved.ends_at = n.flow.ends_at;
    n.flow = moved;
    update_candidate(n);
  }
  Node& n = it->second;
  Flow& flow = n.flow;
  flow.last_seen = now;
  if (!flow.established && flow.inbound_seen &&
      (flow.protocol != IPPROTO_TCP || flow.packets >= 1)) {
    flow.established = true;  // this is (at least) the second packet out, after one came back
    update_candidate(n);
  }
  bool closing = flow.fin_out && flow.fin_in;
  if (!closing) {
    flow.ends_at = now + timeouts_.idle_for(flow.protocol);
    schedule(n);
  }
  return &flow;
}

void FlowTable::note_tcp_flags(const base::packet::FlowKey& key, std::uint8_t flags, bool outbound,
                               double now) {
  if (!(flags & (kFin | kRst))) return;
  auto it = flows_.find(outbound ? key : reversed(key));
  if (it == flows_.end()) return;
  Node& n = it->second;
  Flow& flow = n.flow;
  if (flags & kFin) (outbound ? flow.fin_out : flow.fin_in) = true;
  if ((flags & kRst) || (flow.fin_out && flow.fin_in)) {
    flow.fin_out = flow.fin_in = true;  // closing: later packets no longer extend its life
    flow.ends_at = std::min(flow.ends_at, now + timeouts_.linger);
    schedule(n);
    update_candidate(n);
  }
}

void FlowTable::note_inbound(const base::packet::FlowKey& key) {
  auto it = flows_.find(reversed(key));
  if (it == flows_.end()) return;
  Flow& flow = it->second.flow;
  flow.inbound_seen = true;
  if (flow.protocol != IPPROTO_TCP || flow.packets >= 2) {
    flow.established = true;
    update_candidate(it->second);
  }
}

void FlowTable::evict(Node* n) {
  remove(n);
  ++evicted_;
}

void FlowTable::remove(Node* n) {
  if (on_remove_) on_remove_(*n->key, n->flow);
  bucket(n->due_second).unlink(n);
  if (n->candidate) {
    peers_[n->flow.peer].candidates.unlink(n);
    n->host->candidates.unlink(n);
  }
  --peers_[n->flow.peer].count;
  if (--n->host->count == 0) hosts_.erase(host_key(*n->key));
  base::packet::FlowKey key = *n->key;  // erase() must not read a key it is destroying
  flows_.erase(key);
}

void FlowTable::unbind_assoc(transport::AssocId assoc) {
  for (auto& [key, n] : flows_) {
    if (n.flow.assoc == assoc) {
      n.flow.assoc = 0;
      n.flow.stream = 0;
    }
  }
}

std::size_t FlowTable::expire(double now) {
  const std::int64_t now_second = static_cast<std::int64_t>(std::floor(now));
  std::size_t removed = 0;
  // Buckets of earlier seconds hold only due flows (or ones kBuckets seconds later); the bucket
  // of this second is visited again next time, for its flows that are not due yet.
  std::int64_t first = std::max(expired_second_, now_second - kBuckets + 1);
  for (std::int64_t second = first; second <= now_second; ++second) {
    ExpiryList& list = bucket(second);
    for (Node* n = list.head; n;) {
      Node* next = n->expiry.next;
      if (now > n->flow.ends_at) {
        remove(n);
        ++removed;
      }
      n = next;
    }
  }
  expired_second_ = std::max(expired_second_, now_second);
  return removed;
}

std::size_t FlowTable::count_bound_to(transport::AssocId assoc) const {
  std::size_t n = 0;
  for (const auto& [key, node] : flows_) n += node.flow.assoc == assoc;
  return n;
}

std::uint16_t StreamCursor::next() {
  if (out_streams_ < 2) return 0;
  last_ = static_cast<std::uint16_t>(last_ % (out_streams_ - 1) + 1);
  return last_;
}

}  // namespace gateway
