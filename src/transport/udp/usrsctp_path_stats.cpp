// UsrsctpTransport, part 9: what `show` lists of each path beyond its counters: its role (does
// it carry associations), its rates each way and its share of the bytes sent to the peer, the
// congestion windows of the associations on it, and the share of DATA chunks resent on it.
//
// Every 100 ms (the FEC tick) each path's counters go into its ring of samples
// (Peer::Path::samples); a listing compares the counters now with the oldest sample there, taken
// about a second before. All paths of a peer are sampled at the same tick, so their shares are of
// the same window.

#include "src/transport/udp/usrsctp_state.hpp"
#include "src/transport/udp/usrsctp_transport.hpp"

#include <sys/socket.h>

namespace transport::udp {

namespace {

using Sample = UsrsctpTransport::Peer::Path::Sample;

Sample sample_of(const UsrsctpTransport::Peer::Path& path, double now) {
  return {now, path.bytes_out, path.bytes_in, path.data_chunks_out, path.data_chunks_retransmitted};
}

// The oldest sample of path, or none before the first tick.
const Sample* oldest(const UsrsctpTransport::Peer::Path& path) {
  if (path.sample_count == 0) return nullptr;
  return &path.samples[path.sample_count < path.samples.size() ? 0 : path.next_sample];
}

// now - then for counters that only grow (0 should one have gone back).
std::uint64_t grown(std::uint64_t now, std::uint64_t then) {
  return now > then ? now - then : 0;
}

}  // namespace

void UsrsctpTransport::sample_paths(double now) {
  for (auto& peer : peer_state_) {
    for (Peer::Path& path : peer->paths) {
      path.samples[path.next_sample] = sample_of(path, now);
      path.next_sample = (path.next_sample + 1) % path.samples.size();
      if (path.sample_count < path.samples.size()) ++path.sample_count;
    }
  }
}

std::vector<std::uint64_t> UsrsctpTransport::path_cwnds(const Peer& peer) const {
  std::vector<std::uint64_t> cwnds(peer.paths.size(), 0);
  if (peer.paths.empty()) return cwnds;
  for (const Link* link : peer.slots) {
    if (!link->sock || !link->machine.ready()) continue;
    sctp_status status{};
    socklen_t len = sizeof status;
    if (usrsctp_getsockopt(link->sock, IPPROTO_SCTP, SCTP_STATUS, &status, &len) != 0) continue;
    std::size_t path = peer.path_for(link->slot);
    if (path < cwnds.size()) cwnds[path] += status.sstat_primary.spinfo_cwnd;
  }
  return cwnds;
}

void UsrsctpTransport::fill_path_stats(const Peer& peer, std::span<const std::uint64_t> cwnds,
                                       std::vector<PathInfo>& paths, double now) const {
  std::uint64_t peer_out = 0;
  std::vector<Sample> deltas(paths.size());
  for (std::size_t i = 0; i < paths.size() && i < peer.paths.size(); ++i) {
    const Peer::Path& path = peer.paths[i];
    if (const Sample* then = oldest(path)) {
      Sample cur = sample_of(path, now);
      deltas[i] = {cur.at - then->at, grown(cur.bytes_out, then->bytes_out),
                   grown(cur.bytes_in, then->bytes_in),
                   grown(cur.data_chunks_out, then->data_chunks_out),
                   grown(cur.data_chunks_retransmitted, then->data_chunks_retransmitted)};
      peer_out += deltas[i].bytes_out;
    }
  }
  for (std::size_t i = 0; i < paths.size() && i < peer.paths.size(); ++i) {
    PathInfo& p = paths[i];
    bool carries = false;
    for (std::size_t slot = 0; slot < peer.slots.size() && !carries; ++slot)
      carries = peer.path_for(static_cast<std::uint16_t>(slot)) == i;
    p.role = path_role(p.state, carries);
    p.cwnd = i < cwnds.size() ? cwnds[i] : 0;
    const Sample& d = deltas[i];
    if (d.at > 0) {
      p.rate_out = static_cast<std::uint64_t>(static_cast<double>(d.bytes_out) * 8 / d.at);
      p.rate_in = static_cast<std::uint64_t>(static_cast<double>(d.bytes_in) * 8 / d.at);
    }
    if (peer_out)
      p.share_pct = static_cast<double>(d.bytes_out) * 100 / static_cast<double>(peer_out);
    if (d.data_chunks_out)
      p.data_loss_pct = static_cast<double>(d.data_chunks_retransmitted) * 100 /
                        static_cast<double>(d.data_chunks_out);
  }
}

}  // namespace transport::udp
