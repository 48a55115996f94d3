// The inbound half of the Gateway (gateway.hpp): messages from the transport (handshake
// messages, sealed and plain packets, bundles, context resets) opened, checked and rebuilt into
// packets that are written into the TUN (whole super-packets, or coalesced / segmented here).
#include <algorithm>
#include <cstring>

#include "src/base/log.hpp"
#include "src/base/packet.hpp"
#include "src/gateway/gateway.hpp"
#include "src/gateway/wire.hpp"

namespace gateway {

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
                                 const policy::Decision& decision,
                                 const std::optional<tun::VnetHdr>& vnet) {
  // The peer refuses every header but those vnet_hdr_matches() accepts: never send another.
  if (vnet && !tun::gso::vnet_hdr_matches(*vnet, view)) return tunnel_local(buf, decision, *vnet);
  const transport::PeerId peer = decision.peer;
  base::packet::FlowKey key = base::packet::FlowKey::of(view);
  gateway::OpenResult open_result;
  std::uint64_t evicted = flows_.evicted();
  gateway::Flow* flow = flows_.lookup_or_open(key, peer, loop_.now(), &open_result);
  if (!flow || flows_.evicted() != evicted) note_flow_limit(peer, key, open_result);
  if (!flow) {
    counters_.drop(open_result == gateway::OpenResult::host_limit ? Drop::host_flow_limit
                                                                  : Drop::flow_limit);
    if (open_result == gateway::OpenResult::peer_limit) ++peers_[peer].flow_limit_hits;
    return Outcome::dropped;
  }
  flow->redundant = decision.redundant;  // the rule's as of now (a reload may change it)
  if (view.protocol == IPPROTO_TCP && view.has_ports &&
      view.bytes.size() > view.l3_header_len + 13u)
    flows_.note_tcp_flags(key, view.bytes[view.l3_header_len + 13], true, loop_.now());
  if (!bind_flow(*flow)) {
    counters_.drop(Drop::peer_down);
    return Outcome::dropped;
  }
  std::size_t inner_size = buf.size();
  // Striped (gateway_stripe.cpp): this packet goes where it arrives first, numbered.
  transport::AssocId assoc = security(peer).stripe ? stripe_target(*flow, inner_size) : 0;
  const bool sequenced = assoc != 0;
  if (!sequenced) assoc = flow->assoc;
  AssocState& state = assocs_.at(assoc);
  if (!sequenced && state.bundle && !vnet && inner_size <= Bundle::kMaxInnerPacket)
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
  if (sequenced) {
    if (!flow->stripe) {
      flow->stripe = peers_[peer].next_stripe++;
      if (!flow->stripe) flow->stripe = peers_[peer].next_stripe++;  // 0: "not striped"
    }
    gateway::wire::write_sequenced_header(buf.push_front(gateway::wire::kSequencedHeaderSize),
                                          flow->stripe, flow->next_seq);
    header_size += gateway::wire::kSequencedHeaderSize;
  }
  transport::SendResult result =
      send_message(assoc, state, flow->stream, buf.data(), {.redundant = flow->redundant});
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
      if (sequenced) {
        ++flow->next_seq;
        ++counters_.striped_packets;
      }
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

Gateway::Outcome Gateway::tunnel_local(tun::PacketBuf& buf, const policy::Decision& decision,
                                       const tun::VnetHdr& vnet) {
  // The packets are made and sent one at a time from local_done_ on (see there): on would_block
  // the one that blocked and those after it wait for the retry of this packet, which resumes at
  // it, so the transport never has to take a whole super-packet's worth at once.
  bool blocked = false;
  const bool ok = out_segmenter_.segment_local(
      vnet, buf.data(), local_done_, [&](std::span<const std::uint8_t> packet) {
        base::packet::PacketView view;
        local_packet_.assign(packet);
        if (base::packet::parse(local_packet_.data(), view) != base::packet::ParseError::none) {
          counters_.drop(Drop::tun_malformed);  // segment_local() makes only packets that parse
        } else if (tunnel(local_packet_, view, decision, std::nullopt) == Outcome::blocked) {
          blocked = true;
          return false;
        }
        ++local_done_;
        return true;
      });
  if (!ok) {
    counters_.drop(Drop::tun_malformed);  // not even our own kernel makes such a packet
    return Outcome::dropped;
  }
  if (blocked) return Outcome::blocked;
  ++counters_.vnet_completed_locally;
  return Outcome::sent;
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
  bundle_.append(flow.assoc, flow.stream, {type, std::span(encoded, encoded_len), payload},
                 {.redundant = flow.redundant});
  if (state.compress) count_compression(view, header_len, encoded_len);
  count_tunneled(flow, buf.size());
  return Outcome::sent;
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
  // The peer's last association: nothing can fill the gaps of its striped flows any more.
  if (peer.ready_assocs.empty()) resequencer_.release_peer(it->second.peer);
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
    case gateway::wire::Type::sequenced:
      handle_sequenced(assoc, state, stream, msg);
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
  // The nonce of another of our associations: our HELLO reflected with its instance id altered
  // (its AUTH could not verify either; this says why at once).
  if (state.handshake->needs_auth()) {
    for (const auto& [id, other] : assocs_) {
      if (id != assoc && other.handshake && other.handshake->needs_auth() &&
          other.handshake->nonce() == state.handshake->peer_nonce()) {
        fail_handshake(assoc, state,
                       "the peer's HELLO carries the nonce of another of our associations (a "
                       "reflection of our own HELLO)");
        return;
      }
    }
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
                            tun::PacketBuf& msg, gateway::wire::PacketForm form,
                            const gateway::wire::Sequenced* sequenced) {
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
      view.total_len != msg.size() || (vnet && !tun::gso::vnet_hdr_matches(*vnet, view))) {
    // Only a header that a kernel would have made for this packet may reach ours.
    counters_.drop(Drop::inner_malformed);
    return;
  }
  // Before the packet touches any state (flows, counters of what was received).
  if (!policy_.source_allowed(state.peer, view.version, view.src.data()) &&
      !reports_on_packet_to(state.peer, view)) {
    note_source_not_allowed(state.peer, view);
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
  if (sequenced) {
    resequence(state, *sequenced, msg, vnet);
  } else if (!write_tun(msg, vnet)) {
    counters_.drop(Drop::tun_write);
  }
}

// ICMP errors come from whatever router on the way dropped our packet: on the peer's side most
// often the peer gateway itself, from the address of its TUN (where the packet arrived), which is
// no address of its LAN. Such an error passes when it reports on a packet that went to the peer's
// side: its quoted packet's destination is an address the peer may send from, and its quoted
// source is the error's destination (the host it reports to). Its own source is then not checked:
// a peer can forge the source of an error only about packets to its own side, which it receives
// and could answer anyway.
bool Gateway::reports_on_packet_to(transport::PeerId peer,
                                   const base::packet::PacketView& view) const {
  if (view.is_fragment) return false;
  std::span<const std::uint8_t> packet = view.bytes.first(view.total_len);
  std::size_t at = view.l3_header_len;
  if (packet.size() < at + 8) return false;
  std::uint8_t type = packet[at];
  if (view.version == 4) {
    if (view.protocol != IPPROTO_ICMP || (type != 3 && type != 11 && type != 12)) return false;
  } else if (view.protocol != IPPROTO_ICMPV6 || type < 1 || type > 4) {
    return false;
  }
  std::span<const std::uint8_t> quoted = packet.subspan(at + 8);
  std::size_t src_at = view.version == 4 ? 12 : 8, dst_at = view.version == 4 ? 16 : 24;
  if (quoted.size() < dst_at + view.addr_len() || quoted[0] >> 4 != view.version) return false;
  return std::memcmp(quoted.data() + src_at, view.dst.data(), view.addr_len()) == 0 &&
         policy_.source_allowed(peer, view.version, quoted.data() + dst_at);
}

void Gateway::note_source_not_allowed(transport::PeerId peer,
                                      const base::packet::PacketView& view) {
  counters_.drop(Drop::source_not_allowed);
  PeerStatus& status = peers_[peer];
  ++status.source_not_allowed;
  // One line per 10 s per peer at most: a spoofing host can send thousands a second.
  if (!status.source_log.allow(loop_.now())) return;
  LOG_WARN(
      "peer %s: packet from %s to %s dropped: not a source this peer may send from (the [[policy]] "
      "tunnel rules naming it, its allowed_sources); %llu dropped from this peer so far",
      status.name.c_str(), base::packet::address_to_string(view.version, view.src.data()).c_str(),
      base::packet::address_to_string(view.version, view.dst.data()).c_str(),
      static_cast<unsigned long long>(status.source_not_allowed));
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

}  // namespace gateway
