// The Gateway's striped flows (wire.hpp SEQUENCED). With two or more associations to a peer that
// agreed striping (both HELLOs; [transport] multipath = "aggregate" offers it), each packet of a
// flow goes on the association where it would arrive first, so one flow uses every path:
//
//   sending    a flow is striped once its own association holds it back (stripe_target); from
//              then on tunnel() asks stripe_target() per packet: for each candidate association,
//              when the packet would arrive (transport::SendLoad::arrival: half an RTT, plus the
//              time to drain what it holds, at the rate its window allows and its recent
//              deliveries bear out: SendLoad::drain_rate). The packet is compressed
//              on that association's stream, numbered (the flow's stripe and next seq) and sent as
//              SEQUENCED. Striped packets are not bundled.
//   receiving  each SEQUENCED message is opened and rebuilt on the stream it came on (its
//              compression context lives there), then the resequencer (resequencer.hpp) hands the
//              flow's packets to the TUN in seq order; what waits is released after its hold.
#include <limits>

#include "src/base/log.hpp"
#include "src/gateway/gateway.hpp"
#include "src/gateway/wire.hpp"

namespace gateway {

namespace {
constexpr double kSpillQueue = 0.005;  // seconds
}  // namespace

transport::AssocId Gateway::stripe_target(const gateway::Flow& flow, std::size_t size) const {
  // A flow starts striping once its own association holds it back (a queue of kSpillQueue):
  // light flows (a bulk transfer's acknowledgements, interactive ones) stay whole on theirs,
  // so a path that dies stalls them no more than before, and they pay nothing for numbering.
  if (!flow.stripe) {
    const AssocState& home = assocs_.at(flow.assoc);
    std::optional<transport::SendLoad> load =
        home.handshake->stripe() ? transport_.send_load(flow.assoc) : std::nullopt;
    if (!load || load->window == 0 || load->window_time(size) < kSpillQueue) return 0;
  }
  transport::AssocId best = 0;
  double best_at = std::numeric_limits<double>::infinity();
  std::size_t candidates = 0;
  for (transport::AssocId assoc : peers_[flow.peer].ready_assocs) {
    const AssocState& state = assocs_.at(assoc);
    if (!state.handshake->stripe() || flow.stream >= state.out_streams) continue;
    std::optional<transport::SendLoad> load = transport_.send_load(assoc);
    if (!load || load->window == 0) continue;
    ++candidates;
    double at = load->arrival(size);
    if (at < best_at) {
      best_at = at;
      best = assoc;
    }
  }
  // A flow striped once stays numbered while any candidate is left: the far side may hold
  // packets after a gap that the next ones fill.
  return candidates >= 2 || (flow.stripe && candidates == 1) ? best : 0;
}

void Gateway::handle_sequenced(transport::AssocId assoc, AssocState& state, std::uint16_t stream,
                               tun::PacketBuf& msg) {
  gateway::wire::Sequenced sequenced;
  if (!state.handshake->stripe() ||
      gateway::wire::decode_sequenced(msg.data(), sequenced) != gateway::wire::DecodeError::none) {
    counters_.drop(Drop::wire_malformed);
    return;
  }
  msg.pull_front(gateway::wire::kSequencedHeaderSize);
  handle_packet(assoc, state, stream, msg, gateway::wire::packet_form(sequenced.inner), &sequenced);
}

void Gateway::resequence(const AssocState& state, const gateway::wire::Sequenced& sequenced,
                         tun::PacketBuf& packet, const std::optional<tun::VnetHdr>& vnet) {
  resequencer_.arrive(state.peer, sequenced.stripe, sequenced.seq, packet.data(), vnet,
                      loop_.now());
  if (resequencer_.holding() && !resequencer_timer_on_) {
    resequencer_timer_on_ = true;
    resequencer_timer_.start();
  }
}

void Gateway::expire_resequencer() {
  resequencer_.expire(loop_.now());
  if (!resequencer_.holding()) {
    resequencer_timer_.stop();
    resequencer_timer_on_ = false;
  }
}

}  // namespace gateway
