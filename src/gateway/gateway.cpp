#include "src/gateway/gateway.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "src/base/log.hpp"
#include "src/base/packet.hpp"
#include "src/gateway/wire.hpp"

namespace gateway {

using gateway::Drop;

namespace {
// Bound on TUN batches per readable event, so inbound traffic and timers get their turn.
constexpr int kMaxBatchesPerWakeup = 16;
}  // namespace

Gateway::Gateway(base::EventLoop& loop, tun::Device& tun, transport::Transport& transport,
                 BypassPath* bypass, policy::Policy policy, Options options)
    : loop_(loop),
      tun_(tun),
      transport_(transport),
      bypass_(bypass),
      policy_(std::move(policy)),
      options_(std::move(options)),
      flows_(options_.max_flows, options_.max_flows_per_peer, options_.flow_timeouts,
             options_.max_flows_per_host ? options_.max_flows_per_host
                                         : std::max<std::size_t>(1, options_.max_flows / 8)),
      batch_(options_.batch_size),
      expiry_timer_(loop, 1, 1, [this] { expire_flows(); }),
      icmp_limit_(options_.icmp_per_second, options_.icmp_burst),
      gro_flush_(
          loop, [this] { flush_gro(); }, base::BeforeBlock::Order::last),
      resequencer_(
          {},
          [this](std::span<const std::uint8_t> packet, const std::optional<tun::VnetHdr>& vnet) {
            resequenced_.assign(packet);
            if (!write_tun(resequenced_, vnet)) counters_.drop(Drop::tun_write);
          }),
      resequencer_timer_(loop, 0.02, 0.02, [this] { expire_resequencer(); }) {
  for (const std::string& name : options_.peer_names) {
    PeerStatus status;
    status.name = name;
    peers_.push_back(status);
  }
  transport_.set_events(this);
  if (tun_.fd() >= 0) {
    tun_watch_ = std::make_unique<base::IoWatcher>(loop, tun_.fd(), base::kRead,
                                                   [this](int) { read_tun(); });
    tun_watch_->start();
  }
  expiry_timer_.start();
  flows_.set_on_remove([this](const base::packet::FlowKey& key, const gateway::Flow& flow) {
    // The flow leaves its association (removed, or moved to another peer): the association's
    // count drops and the compressor's context of the flow is no longer needed (the far side
    // needs no notice).
    auto it = assocs_.find(flow.assoc);
    if (it == assocs_.end()) return;
    --it->second.bound_flows;
    if (flow.stream < it->second.compressors.size() && it->second.compressors[flow.stream])
      it->second.compressors[flow.stream]->forget(key);
  });
}

Gateway::~Gateway() {
  transport_.set_events(nullptr);
}

void Gateway::expire_flows() {
  resequencer_.expire(loop_.now());  // forgets idle stripes
  std::size_t n = flows_.expire(loop_.now());
  if (n) LOG_DEBUG("%zu flows ended, %zu left", n, flows_.size());
}

void Gateway::read_tun() {
  drain_pending();
  for (int round = 0; round < kMaxBatchesPerWakeup && !tun_paused(); ++round) {
    std::size_t n = tun_.read(batch_);
    if (n == 0) break;
    pending_begin_ = 0;
    pending_end_ = n;
    drain_pending();
  }
  update_tun_watch();
}

void Gateway::drain_pending() {
  while (pending_begin_ < pending_end_) {
    tun::PacketBuf& buf = batch_[pending_begin_];
    if (forward(buf) == Outcome::blocked) {
      ++counters_.backpressure_pauses;
      return;
    }
    ++pending_begin_;
  }
  pending_begin_ = pending_end_ = 0;
  if (!flush_bundle()) ++counters_.backpressure_pauses;
}

void Gateway::update_tun_watch() {
  if (!tun_watch_) return;
  if (tun_paused())
    tun_watch_->stop();
  else if (!tun_watch_->active())
    tun_watch_->start();
}

Gateway::Outcome Gateway::forward(tun::PacketBuf& buf) {
  std::optional<tun::VnetHdr> vnet;
  if (tun_.vnet_hdr()) {
    vnet = tun::VnetHdr::load(buf.data());
    if (!vnet) {
      counters_.drop(Drop::tun_malformed);
      return Outcome::dropped;
    }
    buf.pull_front(tun::kVnetHdrSize);
    if (vnet->is_plain()) vnet.reset();
  }
  Outcome outcome = forward_packet(buf, vnet);
  // A blocked packet is retried from the start: leave it as it was read.
  if (outcome == Outcome::blocked) {
    if (tun_.vnet_hdr()) buf.push_front(tun::kVnetHdrSize);
  } else {
    local_done_ = 0;  // the next packet starts afresh
  }
  return outcome;
}

Gateway::Outcome Gateway::forward_packet(tun::PacketBuf& buf,
                                         const std::optional<tun::VnetHdr>& vnet) {
  base::packet::PacketView view;
  if (base::packet::parse(buf.data(), view) != base::packet::ParseError::none) {
    counters_.drop(Drop::tun_malformed);
    return Outcome::dropped;
  }
  // The packet as the IP header says; trailing bytes beyond it are not ours to forward.
  buf.set_size(view.total_len);
  view.bytes = buf.data();
  policy::Decision decision =
      policy_.decide({view.version, view.dst.data(), view.protocol, view.has_ports, view.dst_port});
  switch (decision.action) {
    case policy::Action::tunnel:
      return tunnel(buf, view, decision, vnet);
    case policy::Action::bypass:
      return bypass(buf, vnet);
    case policy::Action::drop:
      counters_.drop(decision.matched ? Drop::policy_drop : Drop::no_rule);
      send_unreachable(view);
      return Outcome::dropped;
  }
  return Outcome::dropped;
}

Gateway::Outcome Gateway::bypass(tun::PacketBuf& buf, const std::optional<tun::VnetHdr>& vnet) {
  auto send_one = [this](std::span<const std::uint8_t> packet) {
    if (bypass_ && bypass_->send(packet)) {
      ++counters_.bypassed_packets;
      counters_.bypassed_bytes += packet.size();
    } else {
      counters_.drop(Drop::bypass_failed);
    }
    return true;
  };
  // Our own kernel's header: anything it hands out is segmented (segment_local), and from
  // local_done_ on, should part of this packet have gone into the tunnel before a policy change.
  if (!vnet) {
    send_one(buf.data());
  } else if (!out_segmenter_.segment_local(*vnet, buf.data(), local_done_, send_one)) {
    counters_.drop(Drop::tun_malformed);  // a super-packet the kernel should not have made
  }
  return Outcome::sent;
}

void Gateway::send_unreachable(const base::packet::PacketView& dropped) {
  icmp_buf_.reset();
  std::size_t n =
      gateway::icmp::make_admin_prohibited(dropped, dropped.dst.data(), icmp_buf_.tailroom());
  if (n == 0 || !icmp_limit_.allow(loop_.now())) return;
  icmp_buf_.set_size(n);
  if (write_tun(icmp_buf_, std::nullopt)) ++counters_.icmp_unreachable_sent;
}

bool Gateway::flush_bundle() {
  if (bundle_.empty()) return true;
  auto it = assocs_.find(bundle_.assoc());
  transport::SendResult result = it == assocs_.end()
                                     ? transport::SendResult::closed
                                     : send_message(bundle_.assoc(), it->second, bundle_.stream(),
                                                    bundle_.message(), bundle_.options());
  if (result == transport::SendResult::would_block) return false;
  if (result != transport::SendResult::ok) {
    for (std::size_t i = 0; i < bundle_.items(); ++i) counters_.drop(Drop::send_error);
  } else if (bundle_.items() > 1) {
    ++counters_.bundles_sent;
    counters_.bundled_packets += bundle_.items();
  }
  bundle_.clear();
  return true;
}

void Gateway::count_tunneled(gateway::Flow& flow, std::size_t inner_size) {
  ++counters_.tunneled_packets;
  counters_.tunneled_bytes += inner_size;
  ++flow.packets;
  flow.bytes += inner_size;
  if (flow.redundant) ++counters_.redundant_packets;
  PeerStatus& status = peers_[flow.peer];
  ++status.tx_packets;
  status.tx_bytes += inner_size;
}

void Gateway::note_flow_limit(transport::PeerId peer, const base::packet::FlowKey& key,
                              gateway::OpenResult why) {
  // One line per 10 s at most: a flood hits the limit thousands of times a second.
  if (!flow_limit_log_.allow(loop_.now())) return;
  const bool evicted = why == gateway::OpenResult::ok;
  const std::uint64_t refused = counters_.dropped(Drop::flow_limit) +
                                counters_.dropped(Drop::host_flow_limit) + (evicted ? 0 : 1);
  std::string host = base::packet::address_to_string(key.version, key.src.data());
  LOG_WARN(
      "flow limit reached (%zu flows, peer %s %zu, source %s %zu; [flows] max %zu, "
      "max_per_peer %zu, max_per_host %zu): %s (%llu evicted, %llu refused so far)",
      flows_.size(), peers_[peer].name.c_str(), flows_.count_of_peer(peer), host.c_str(),
      flows_.count_of_host(key), flows_.max_flows(), options_.max_flows_per_peer,
      flows_.max_per_host(),
      evicted ? "evicting the oldest flows that are not established"
      : why == gateway::OpenResult::host_limit
          ? "the source's flows are all established: new flow dropped"
          : "no flow to evict: new flow dropped",
      static_cast<unsigned long long>(flows_.evicted()), static_cast<unsigned long long>(refused));
}

bool Gateway::bind_flow(gateway::Flow& flow) {
  if (flow.assoc != 0) return true;  // bindings are cleared when their association goes down
  const std::vector<transport::AssocId>& ready = peers_[flow.peer].ready_assocs;
  if (ready.empty()) return false;
  // The ready association with the fewest flows (ties: the next one in turn), so that no
  // association carries more flows than its peer keeps header contexts for, whatever the churn.
  transport::AssocId assoc = 0;
  std::size_t fewest = SIZE_MAX;
  for (std::size_t i = 0; i < ready.size(); ++i) {
    transport::AssocId candidate = ready[(next_bind_ + i) % ready.size()];
    std::size_t bound = assocs_.at(candidate).bound_flows;
    if (bound < fewest) {
      fewest = bound;
      assoc = candidate;
    }
  }
  ++next_bind_;
  AssocState& state = assocs_.at(assoc);
  std::uint16_t stream = state.streams.next();
  if (stream == 0) return false;
  flow.assoc = assoc;
  flow.stream = stream;
  ++state.bound_flows;
  return true;
}

void Gateway::on_assoc_up(transport::AssocId assoc, transport::PeerId peer,
                          std::uint16_t out_streams) {
  if (peer >= peers_.size()) return;
  AssocState& state = assocs_[assoc];
  state = AssocState();
  state.peer = peer;
  state.out_streams = out_streams;
  state.streams = gateway::StreamCursor(out_streams);
  state.handshake = std::make_unique<Handshake>(security(peer), options_.instance);
  LOG_DEBUG("peer %s: association %llu up, %u outbound streams, sending HELLO",
            peers_[peer].name.c_str(), static_cast<unsigned long long>(assoc), out_streams);
  advance_handshake(assoc, state);
}

codec::Compressor& AssocState::compressor(std::uint16_t stream) {
  if (compressors.size() <= stream) compressors.resize(std::size_t{stream} + 1);
  if (!compressors[stream]) compressors[stream] = std::make_unique<codec::Compressor>();
  return *compressors[stream];
}

codec::Decompressor& AssocState::decompressor(std::uint16_t stream) {
  if (decompressors.size() <= stream) decompressors.resize(std::size_t{stream} + 1);
  if (!decompressors[stream])
    decompressors[stream] = std::make_unique<codec::Decompressor>(1024, &decompress_budget);
  return *decompressors[stream];
}

const PeerSecurity& Gateway::security(transport::PeerId peer) const {
  static const PeerSecurity defaults;
  return peer < options_.peer_security.size() ? options_.peer_security[peer] : defaults;
}

void Gateway::advance_handshake(transport::AssocId assoc, AssocState& state) {
  Handshake& hs = *state.handshake;
  PeerStatus& peer = peers_[state.peer];
  // The lines below come once per association, as often as the peer opens them: within the
  // peer's assoc_log limit, with the count of those left out.
  auto may_log = [&](std::string& unlogged) {
    if (!peer.assoc_log.allow(loop_.now())) {
      ++peer.assoc_unlogged;
      return false;
    }
    if (peer.assoc_unlogged)
      unlogged = "; " + std::to_string(peer.assoc_unlogged) +
                 " more lines about its associations not logged since the last";
    peer.assoc_unlogged = 0;
    return true;
  };
  auto send = [&](std::span<const std::uint8_t> msg, const char* what) {
    transport::SendResult result = transport_.send(assoc, gateway::wire::kControlStream, msg);
    std::string unlogged;
    if (result != transport::SendResult::ok && result != transport::SendResult::would_block &&
        may_log(unlogged))
      LOG_WARN("peer %s: could not send %s on association %llu%s", peer.name.c_str(), what,
               static_cast<unsigned long long>(assoc), unlogged.c_str());
    return result == transport::SendResult::ok;
  };
  if (!state.hello_sent) state.hello_sent = send(hs.hello(), "HELLO");
  if (state.hello_sent && hs.needs_auth() && hs.peer_hello_received() && !state.auth_sent)
    state.auth_sent = send(hs.auth(), "AUTH");
  if (!state.listed_ready && state.ready()) {
    state.listed_ready = true;
    peer.ready_assocs.push_back(assoc);
    transport_.set_fec(state.peer, hs.fec());
    std::string unlogged;
    if (may_log(unlogged))
      LOG_INFO("peer %s: association %llu ready (peer instance %08x, %s%s%s)", peer.name.c_str(),
               static_cast<unsigned long long>(assoc), hs.peer_instance(),
               hs.needs_auth() ? "key verified" : "NOT authenticated",
               hs.session()
                   ? (std::string(", ") + crypto::to_string(hs.session()->cipher())).c_str()
                   : ", not encrypted",
               unlogged.c_str());
  }
}

void Gateway::fail_handshake(transport::AssocId assoc, AssocState& state,
                             const std::string& reason) {
  PeerStatus& peer = peers_[state.peer];
  std::string where = "unknown address";
  for (const transport::AssocInfo& info : transport_.associations()) {
    if (info.id == assoc && !info.path.empty()) where = info.path;
  }
  ++peer.handshake_failures;
  ++counters_.handshake_failures;
  peer.last_handshake_failure = reason + " (" + where + ")";
  // One line per peer per 10 s: a peer with the wrong key retries every few seconds.
  if (peer.failure_log.allow(loop_.now())) {
    LOG_WARN("peer %s (%s): %s; aborting the association (%llu handshake failures so far)",
             peer.name.c_str(), where.c_str(), reason.c_str(),
             static_cast<unsigned long long>(peer.handshake_failures));
  }
  transport_.abort(assoc, reason.c_str());  // state is gone after this (on_assoc_down)
}

transport::SendResult Gateway::send_message(transport::AssocId assoc, AssocState& state,
                                            std::uint16_t stream, std::span<const std::uint8_t> msg,
                                            transport::SendOptions options) {
  crypto::Session* session = state.handshake->session();
  if (!session) return transport_.send(assoc, stream, msg, options);
  sealed_.resize(gateway::wire::sealed_size(msg.size()));
  session->seal(stream, msg, gateway::wire::begin_sealed(sealed_).data());
  transport::SendResult result = transport_.send(assoc, stream, sealed_, options);
  if (result == transport::SendResult::ok) session->commit_sent(stream);
  return result;
}

void Gateway::on_writable() {
  for (auto& [assoc, state] : assocs_) advance_handshake(assoc, state);
  drain_pending();
  if (!tun_paused() && tun_watch_) read_tun();
  update_tun_watch();
}

}  // namespace gateway
