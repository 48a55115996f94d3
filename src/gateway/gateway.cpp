#include "src/gateway/gateway.hpp"

#include <algorithm>
#include <cstring>

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
      flows_(options_.max_flows, options_.max_flows_per_peer, options_.flow_timeouts),
      batch_(options_.batch_size),
      expiry_timer_(loop, 1, 1, [this] { expire_flows(); }),
      icmp_limit_(options_.icmp_per_second, options_.icmp_burst),
      gro_flush_(
          loop, [this] { flush_gro(); }, base::BeforeBlock::Order::last) {
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
    // The compressor's context of the flow is no longer needed (the far side needs no notice).
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
  if (outcome == Outcome::blocked && tun_.vnet_hdr()) buf.push_front(tun::kVnetHdrSize);
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
      return tunnel(buf, view, decision.peer, vnet);
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
  };
  if (!vnet) {
    send_one(buf.data());
  } else if (!segmenter_.segment(*vnet, buf.data(), send_one)) {
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

bool Gateway::write_tun(tun::PacketBuf& packet, const std::optional<tun::VnetHdr>& vnet) {
  if (tun_.vnet_hdr() && !vnet && options_.gro &&
      gro_.offer(packet.data(), [this](const tun::PacketBuf& super) { write_super(super); }))
    return true;
  flush_gro();  // what waits there came first
  if (tun_.vnet_hdr()) {
    (vnet ? *vnet : tun::VnetHdr{}).store(packet.push_front(tun::kVnetHdrSize));
  } else if (vnet) {
    // A TUN without offloads: the super-packet becomes ordinary, checksummed packets here.
    bool all = true;
    bool ok = segmenter_.segment(*vnet, packet.data(), [&](std::span<const std::uint8_t> segment) {
      scratch_.assign(segment);
      all = write_tun(scratch_, std::nullopt) && all;
    });
    return ok && all;
  }
  const tun::PacketBuf* one[] = {&packet};
  return tun_.write(one) == 1;
}

void Gateway::flush_gro() {
  if (const tun::PacketBuf* super = gro_.take()) write_super(*super);
}

void Gateway::write_super(const tun::PacketBuf& super) {
  counters_.gro_super_packets = gro_.super_packets();
  counters_.gro_segments = gro_.segments();
  const tun::PacketBuf* one[] = {&super};
  if (tun_.write(one) != 1) counters_.drop(Drop::tun_write);
}

Gateway::Outcome Gateway::tunnel(tun::PacketBuf& buf, const base::packet::PacketView& view,
                                 transport::PeerId peer, const std::optional<tun::VnetHdr>& vnet) {
  base::packet::FlowKey key = base::packet::FlowKey::of(view);
  gateway::OpenResult open_result;
  std::uint64_t evicted = flows_.evicted();
  gateway::Flow* flow = flows_.lookup_or_open(key, peer, loop_.now(), &open_result);
  if (!flow || flows_.evicted() != evicted) note_flow_limit(peer, flow != nullptr);
  if (!flow) {
    counters_.drop(Drop::flow_limit);
    if (open_result == gateway::OpenResult::peer_limit) ++peers_[peer].flow_limit_hits;
    return Outcome::dropped;
  }
  if (view.protocol == IPPROTO_TCP && view.has_ports &&
      view.bytes.size() > view.l3_header_len + 13u)
    flows_.note_tcp_flags(key, view.bytes[view.l3_header_len + 13], true, loop_.now());
  if (!bind_flow(*flow)) {
    counters_.drop(Drop::peer_down);
    return Outcome::dropped;
  }
  std::size_t inner_size = buf.size();
  AssocState& state = assocs_.at(flow->assoc);
  if (state.bundle && !vnet && inner_size <= Bundle::kMaxInnerPacket)
    return tunnel_bundled(buf, view, *flow, state);
  if (!flush_bundle()) return Outcome::blocked;  // the bundle's packets were read before this one
  // With compression, the IP+TCP/UDP header is replaced in place by its compressed form; the
  // original is kept aside to restore the packet when it has to wait (would_block).
  std::uint8_t original[codec::kMaxEncodedSize];
  std::size_t original_len = 0, encoded_len = 0;
  if (state.compress) {
    std::uint8_t encoded[codec::kMaxEncodedSize];
    bool partial = vnet && (vnet->flags & tun::VnetHdr::kNeedsCsum);
    codec::Encoded e = state.compressor(flow->stream).encode(buf.data(), encoded, partial);
    original_len = e.header_len;
    encoded_len = e.written;
    std::memcpy(original, buf.data().data(), original_len);
    buf.pull_front(original_len);
    std::memcpy(buf.push_front(encoded_len).data(), encoded, encoded_len);
  }
  std::size_t header_size = gateway::wire::kPacketHeaderSize + encoded_len;
  if (vnet) {
    vnet->store(buf.push_front(gateway::wire::kGsoMetaSize));
    header_size += gateway::wire::kGsoMetaSize;
  }
  gateway::wire::Type type =
      gateway::wire::packet_type({.gso = vnet.has_value(), .compressed = state.compress});
  gateway::wire::write_packet_header(buf.push_front(gateway::wire::kPacketHeaderSize), type);
  transport::SendResult result = send_message(flow->assoc, state, flow->stream, buf.data());
  buf.pull_front(header_size);
  if (state.compress) {
    std::memcpy(buf.push_front(original_len).data(), original, original_len);
    if (result == transport::SendResult::ok) {
      count_compression(view, original_len, encoded_len);
    } else {
      // The compressor advanced for a packet that did not go: undo that one encode, so the
      // retry encodes against the context the peer has.
      state.compressor(flow->stream).rollback();
    }
  }
  switch (result) {
    case transport::SendResult::ok:
      count_tunneled(*flow, inner_size);
      return Outcome::sent;
    case transport::SendResult::would_block:
      return Outcome::blocked;
    case transport::SendResult::closed:
    case transport::SendResult::error:
      counters_.drop(Drop::send_error);
      return Outcome::dropped;
  }
  return Outcome::dropped;
}

Gateway::Outcome Gateway::tunnel_bundled(tun::PacketBuf& buf, const base::packet::PacketView& view,
                                         gateway::Flow& flow, AssocState& state) {
  // The compressor encodes first, so the item's exact size is known; should the bundle in front
  // of it not be sendable now, that one encode is undone and the packet waits.
  std::uint8_t encoded[codec::kMaxEncodedSize];
  std::size_t header_len = 0, encoded_len = 0;
  if (state.compress) {
    codec::Encoded e = state.compressor(flow.stream).encode(buf.data(), encoded, false);
    header_len = e.header_len;
    encoded_len = e.written;
  }
  std::span<const std::uint8_t> payload = buf.data().subspan(header_len);
  std::size_t item_len = gateway::wire::kPacketHeaderSize + encoded_len + payload.size();
  if (!bundle_.accepts(flow.assoc, flow.stream, item_len) && !flush_bundle()) {
    if (state.compress) state.compressor(flow.stream).rollback();
    return Outcome::blocked;
  }
  const std::uint8_t type[] = {
      static_cast<std::uint8_t>(gateway::wire::packet_type({.compressed = state.compress}))};
  bundle_.append(flow.assoc, flow.stream, {type, std::span(encoded, encoded_len), payload});
  if (state.compress) count_compression(view, header_len, encoded_len);
  count_tunneled(flow, buf.size());
  return Outcome::sent;
}

bool Gateway::flush_bundle() {
  if (bundle_.empty()) return true;
  auto it = assocs_.find(bundle_.assoc());
  transport::SendResult result =
      it == assocs_.end()
          ? transport::SendResult::closed
          : send_message(bundle_.assoc(), it->second, bundle_.stream(), bundle_.message());
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
  PeerStatus& status = peers_[flow.peer];
  ++status.tx_packets;
  status.tx_bytes += inner_size;
}

void Gateway::note_flow_limit(transport::PeerId peer, bool evicted) {
  // One line per 10 s at most: a flood hits the limit thousands of times a second.
  if (!flow_limit_log_.allow(loop_.now())) return;
  LOG_WARN(
      "flow limit reached (%zu flows, peer %s %zu; [flows] max %zu, max_per_peer %zu): %s "
      "(%llu evicted, %llu refused so far)",
      flows_.size(), peers_[peer].name.c_str(), flows_.count_of_peer(peer), flows_.max_flows(),
      options_.max_flows_per_peer,
      evicted ? "evicting the oldest flows that are not established"
              : "no flow to evict: new flow dropped",
      static_cast<unsigned long long>(flows_.evicted()),
      static_cast<unsigned long long>(counters_.dropped(Drop::flow_limit) + (evicted ? 0 : 1)));
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
  auto send = [&](std::span<const std::uint8_t> msg, const char* what) {
    transport::SendResult result = transport_.send(assoc, gateway::wire::kControlStream, msg);
    if (result != transport::SendResult::ok && result != transport::SendResult::would_block)
      LOG_WARN("peer %s: could not send %s on association %llu", peers_[state.peer].name.c_str(),
               what, static_cast<unsigned long long>(assoc));
    return result == transport::SendResult::ok;
  };
  if (!state.hello_sent) state.hello_sent = send(hs.hello(), "HELLO");
  if (state.hello_sent && hs.needs_auth() && hs.peer_hello_received() && !state.auth_sent)
    state.auth_sent = send(hs.auth(), "AUTH");
  if (!state.listed_ready && state.ready()) {
    state.listed_ready = true;
    peers_[state.peer].ready_assocs.push_back(assoc);
    transport_.set_fec(state.peer, hs.fec());
    LOG_INFO("peer %s: association %llu ready (peer instance %08x, %s%s)",
             peers_[state.peer].name.c_str(), static_cast<unsigned long long>(assoc),
             hs.peer_instance(), hs.needs_auth() ? "key verified" : "NOT authenticated",
             hs.session() ? (std::string(", ") + crypto::to_string(hs.session()->cipher())).c_str()
                          : ", not encrypted");
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
                                            std::uint16_t stream,
                                            std::span<const std::uint8_t> msg) {
  crypto::Session* session = state.handshake->session();
  if (!session) return transport_.send(assoc, stream, msg);
  sealed_.resize(gateway::wire::sealed_size(msg.size()));
  session->seal(stream, msg, gateway::wire::begin_sealed(sealed_).data());
  transport::SendResult result = transport_.send(assoc, stream, sealed_);
  if (result == transport::SendResult::ok) session->commit_sent(stream);
  return result;
}

bool Gateway::unseal(AssocState& state, std::uint16_t stream, tun::PacketBuf& msg) {
  crypto::Session* session = state.handshake->session();
  if (!session) {
    counters_.drop(state.handshake->seals() ? Drop::before_handshake : Drop::wire_malformed);
    return false;
  }
  if (!session->open(stream, gateway::wire::sealed_body(msg.data()))) {
    counters_.drop(Drop::auth_failed);
    return false;
  }
  msg.pull_front(gateway::wire::kSealedHeaderSize);
  msg.set_size(msg.size() - gateway::wire::kSealedTagSize);
  return true;
}

void Gateway::on_assoc_down(transport::AssocId assoc) {
  auto it = assocs_.find(assoc);
  if (it == assocs_.end()) return;
  PeerStatus& peer = peers_[it->second.peer];
  std::erase(peer.ready_assocs, assoc);
  LOG_DEBUG("peer %s: association %llu down, %zu flows unbound", peer.name.c_str(),
            static_cast<unsigned long long>(assoc), flows_.count_bound_to(assoc));
  flows_.unbind_assoc(assoc);
  assocs_.erase(it);
}

void Gateway::on_message(transport::AssocId assoc, std::uint16_t stream, tun::PacketBuf& msg) {
  auto it = assocs_.find(assoc);
  if (it == assocs_.end()) {
    counters_.drop(Drop::unknown_assoc);
    return;
  }
  AssocState& state = it->second;
  bool opened = gateway::wire::is_sealed(msg.data());
  if (opened && !unseal(state, stream, msg)) return;
  gateway::wire::Message message;
  if (gateway::wire::decode(msg.data(), message) != gateway::wire::DecodeError::none) {
    counters_.drop(Drop::wire_malformed);
    return;
  }
  bool handshake =
      message.type == gateway::wire::Type::hello || message.type == gateway::wire::Type::auth;
  if (opened ? (handshake || message.type == gateway::wire::Type::sealed)
             : (!handshake && state.handshake->seals())) {
    // Sealing agreed: everything but HELLO and AUTH must come sealed, and they never may.
    counters_.drop(opened ? Drop::wire_malformed : Drop::not_sealed);
    return;
  }
  switch (message.type) {
    case gateway::wire::Type::hello:
      handle_hello(assoc, state, msg.data());
      break;
    case gateway::wire::Type::auth:
      handle_auth(assoc, state, msg.data());
      break;
    case gateway::wire::Type::sealed:
      break;  // refused above
    case gateway::wire::Type::packet:
    case gateway::wire::Type::packet_gso:
    case gateway::wire::Type::packet_hc:
    case gateway::wire::Type::packet_gso_hc:
      handle_packet(assoc, state, stream, msg, gateway::wire::packet_form(message.type));
      break;
    case gateway::wire::Type::context_reset:
      handle_context_reset(state, msg.data());
      break;
    case gateway::wire::Type::bundle:
      handle_bundle(assoc, state, stream, msg.data());
      break;
  }
}

void Gateway::handle_hello(transport::AssocId assoc, AssocState& state,
                           std::span<const std::uint8_t> msg) {
  std::string reason;
  if (!state.handshake->on_peer_hello(msg, reason)) {
    fail_handshake(assoc, state, reason);
    return;
  }
  state.compress = state.handshake->compress();
  state.bundle = state.handshake->bundle();
  advance_handshake(assoc, state);
}

void Gateway::handle_auth(transport::AssocId assoc, AssocState& state,
                          std::span<const std::uint8_t> msg) {
  std::string reason;
  if (!state.handshake->on_peer_auth(msg, reason)) {
    fail_handshake(assoc, state, reason);
    return;
  }
  advance_handshake(assoc, state);
}

bool AssocState::accepts_packets() const {
  // With sealing, a message that opened is itself proof of the key (its keys come from the key
  // and both nonces), so packets may overtake the AUTH on stream 0; without, AUTH comes first.
  const Handshake& hs = *handshake;
  return hs.peer_hello_received() && (!hs.needs_auth() || hs.seals() || hs.peer_authenticated());
}

void Gateway::handle_bundle(transport::AssocId assoc, AssocState& state, std::uint16_t stream,
                            std::span<const std::uint8_t> msg) {
  std::span<const std::uint8_t> rest = msg.subspan(1), item;
  while (!rest.empty()) {
    if (gateway::wire::next_bundle_item(rest, item) != gateway::wire::DecodeError::none) {
      counters_.drop(Drop::wire_malformed);  // the malformed rest; the items before it went on
      return;
    }
    auto type = static_cast<gateway::wire::Type>(item[0]);
    if (type != gateway::wire::Type::packet && type != gateway::wire::Type::packet_hc) {
      counters_.drop(Drop::wire_malformed);
      continue;
    }
    bundle_item_.assign(item);
    handle_packet(assoc, state, stream, bundle_item_, gateway::wire::packet_form(type));
  }
}

void Gateway::handle_context_reset(AssocState& state, std::span<const std::uint8_t> msg) {
  std::uint16_t stream = 0;
  if (gateway::wire::decode_context_reset(msg, stream) != gateway::wire::DecodeError::none ||
      !state.compress) {
    counters_.drop(Drop::wire_malformed);
    return;
  }
  ++counters_.hc_context_resets_received;
  if (stream < state.compressors.size() && state.compressors[stream])
    state.compressors[stream]->reset();
}

void Gateway::handle_packet(transport::AssocId assoc, AssocState& state, std::uint16_t stream,
                            tun::PacketBuf& msg, gateway::wire::PacketForm form) {
  if (!state.accepts_packets()) {
    counters_.drop(Drop::before_handshake);
    return;
  }
  if (form.compressed && !state.compress) {
    counters_.drop(Drop::wire_malformed);
    return;
  }
  msg.pull_front(gateway::wire::kPacketHeaderSize);
  std::optional<tun::VnetHdr> vnet;
  if (form.gso) {
    vnet = tun::VnetHdr::load(msg.data());
    if (!vnet) {
      counters_.drop(Drop::wire_malformed);
      return;
    }
    msg.pull_front(gateway::wire::kGsoMetaSize);
  }
  if (form.compressed) {
    std::uint8_t header[codec::kMaxHeaderSize];
    codec::Decoded decoded;
    codec::Decompressor& decompressor = state.decompressor(stream);
    if (decompressor.decode(msg.data(), header, decoded) != codec::Error::none) {
      // Our contexts for this stream can no longer be trusted: start them anew on both sides.
      counters_.drop(Drop::hc_error);
      decompressor.reset();
      const auto reset = gateway::wire::encode_context_reset(stream);
      if (send_message(assoc, state, gateway::wire::kControlStream, reset) ==
          transport::SendResult::ok)
        ++counters_.hc_context_resets_sent;
      return;
    }
    msg.pull_front(decoded.consumed);
    std::memcpy(msg.push_front(decoded.header_len).data(), header, decoded.header_len);
  }
  base::packet::PacketView view;
  if (base::packet::parse(msg.data(), view) != base::packet::ParseError::none ||
      view.total_len != msg.size() || (vnet && !plausible(*vnet, view))) {
    counters_.drop(Drop::inner_malformed);
    return;
  }
  base::packet::FlowKey key = base::packet::FlowKey::of(view);
  flows_.note_inbound(key);
  if (view.protocol == IPPROTO_TCP && view.has_ports &&
      view.bytes.size() > view.l3_header_len + 13u)
    flows_.note_tcp_flags(key, view.bytes[view.l3_header_len + 13], false, loop_.now());
  ++counters_.received_packets;
  counters_.received_bytes += msg.size();
  PeerStatus& peer = peers_[state.peer];
  ++peer.rx_packets;
  peer.rx_bytes += msg.size();
  if (!write_tun(msg, vnet)) counters_.drop(Drop::tun_write);
}

bool Gateway::plausible(const tun::VnetHdr& vnet, const base::packet::PacketView& view) {
  // What the receiving kernel will act on must agree with the packet, so nothing inconsistent
  // reaches it: the GSO kind with the IP version and TCP, the checksum position inside the packet.
  switch (vnet.gso_kind()) {
    case tun::VnetHdr::kGsoNone:
      break;
    case tun::VnetHdr::kGsoTcpV4:
      if (view.version != 4 || view.protocol != IPPROTO_TCP || vnet.gso_size == 0) return false;
      break;
    case tun::VnetHdr::kGsoTcpV6:
      if (view.version != 6 || view.protocol != IPPROTO_TCP || vnet.gso_size == 0) return false;
      break;
    default:
      return false;
  }
  if (vnet.flags & tun::VnetHdr::kNeedsCsum) {
    if (vnet.csum_start < view.l3_header_len ||
        std::size_t{vnet.csum_start} + vnet.csum_offset + 2u > view.total_len)
      return false;
  }
  return true;
}

void Gateway::count_compression(const base::packet::PacketView& view, std::size_t original_len,
                                std::size_t encoded_len) {
  // An escape carries the whole header after its one byte; header_len is then 0.
  std::size_t inner = original_len ? original_len : view.l3_header_len + l4_header_len(view);
  std::size_t out = original_len ? encoded_len : 1 + inner;
  ++counters_.hc_packets;
  counters_.hc_inner_header_bytes += inner;
  counters_.hc_compressed_header_bytes += out;
  if (view.version == 4 && view.protocol == IPPROTO_TCP) {
    ++counters_.hc_tcp4_packets;
    counters_.hc_tcp4_inner_header_bytes += inner;
    counters_.hc_tcp4_compressed_header_bytes += out;
  }
}

std::size_t Gateway::l4_header_len(const base::packet::PacketView& view) {
  if (view.protocol == IPPROTO_UDP) return 8;
  if (view.protocol == IPPROTO_TCP && view.bytes.size() >= view.l3_header_len + 13u)
    return (view.bytes[view.l3_header_len + 12] >> 4) * 4u;
  return 0;
}

void Gateway::on_writable() {
  for (auto& [assoc, state] : assocs_) advance_handshake(assoc, state);
  drain_pending();
  if (!tun_paused() && tun_watch_) read_tun();
  update_tun_watch();
}

}  // namespace gateway
