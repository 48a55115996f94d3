// UsrsctpTransport, part 8: redundant flows (SendOptions::redundant). Their SCTP packets go out
// on every live path to the peer, not just the one their association is on; whichever copy
// arrives first is the one SCTP delivers, the later ones are data it already has (dropped by
// TSN, they never reach the TUN). A path that dies mid-flow loses nothing of such a flow and
// delays nothing: no retransmission is needed.
//
//  - send() marks the message's stream redundant for kHold; while any stream of the association
//    is, conn_output hands every packet to send_copies, which copies the ones that carry DATA of
//    a marked stream, and the ones that carry a SACK and no other DATA (a SACK lost with its path
//    would stall the sender's window until failover).
//  - The receiving side learns that the peer sends copies from the copies themselves: a DATA
//    chunk whose TSN arrived lately on another path (note_copies). It then copies its own SACKs
//    of that association for kHold, so the acknowledgements survive a cut as well.
//  - Copies are not counted as the association's DATA on their path (they are no
//    retransmissions, FEC must not take them for loss); they count as datagrams and bytes.

#include <algorithm>

#include "src/transport/udp/usrsctp_state.hpp"

namespace transport::udp {

using namespace detail;

namespace {
constexpr double kHold = 2.0;  // seconds a stream (or the SACKs) stays copied after its last need
}  // namespace

void UsrsctpTransport::mark_redundant(Link& link, std::uint16_t stream) {
  if (!link.p->monitor) return;  // one path: nothing to copy onto
  double until = loop_.now() + kHold;
  if (link.redundant_until.size() <= stream) link.redundant_until.resize(std::size_t{stream} + 1);
  link.redundant_until[stream] = until;
  link.redundant_any_until = until;
}

void UsrsctpTransport::send_copies(Link& link, std::size_t sent_on,
                                   std::span<const std::uint8_t> packet, bool df) {
  Peer& peer = *link.p;
  if (!peer.monitor) return;
  const double now = loop_.now();
  const bool copy_sacks = link.redundant_any_until > now || link.copy_sacks_until > now;
  bool redundant_data = false, other_data = false, sack = false;
  for_each_chunk(packet, [&](std::uint8_t type, std::span<const std::uint8_t> chunk) {
    if (type == kChunkData || type == kChunkIData) {
      std::uint16_t stream = chunk.size() >= 10 ? base::load_be16(chunk.data() + 8) : 0;
      bool marked = stream < link.redundant_until.size() && link.redundant_until[stream] > now;
      (marked ? redundant_data : other_data) = true;
    } else if (type == kChunkSack || type == kChunkNrSack) {
      sack = true;
    }
  });
  // A SACK riding with other data is not copied for the SACK's sake: the copied data would look
  // like copies to the peer, which would then copy its own SACKs, and so on.
  if (!redundant_data && !(sack && copy_sacks && !other_data)) return;
  for (std::size_t i = 0; i < peer.paths.size() && i < peer.monitor->size(); ++i) {
    if (i == sent_on || peer.monitor->path(i).state != PathState::up) continue;
    peer.paths[i].last_out = now;
    send_packet(peer, i, packet, df);
    ++stats_.redundant_copies_out;
  }
}

void UsrsctpTransport::note_copies(Link& link, std::size_t path,
                                   std::span<const std::uint8_t> packet) {
  for_each_chunk(packet, [&](std::uint8_t type, std::span<const std::uint8_t> chunk) {
    if ((type != kChunkData && type != kChunkIData) || chunk.size() < 8) return;
    std::uint32_t tsn = base::load_be32(chunk.data() + 4);
    std::uint64_t mark = std::uint64_t{tsn} << 8 | (path + 1);
    std::uint64_t& seen = link.received_tsns[tsn % link.received_tsns.size()];
    if (seen != 0 && seen >> 8 == tsn && seen != mark) {
      ++stats_.redundant_copies_in;
      link.copy_sacks_until = loop_.now() + kHold;
    }
    seen = mark;
  });
}

}  // namespace transport::udp
