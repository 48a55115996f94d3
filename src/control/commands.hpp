#pragma once
// What `sctptund show` reports: a Snapshot of the daemon's parts, rendered as text (like
// `wg show`) or as JSON. Rendering is pure, so it is unit-tested without a daemon.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "src/gateway/counters.hpp"
#include "src/gateway/resequencer.hpp"
#include "src/transport/transport.hpp"
#include "tun/device.hpp"

namespace gateway {
class Gateway;
}

namespace control::commands {

struct AssocSnapshot {
  transport::AssocInfo info;
  bool ready = false;    // handshake complete: carries packets
  std::string security;  // "aes256-gcm", "chacha20-poly1305", "authenticated only", "none"
  std::size_t flows = 0;
};

struct PeerSnapshot {
  std::string name;
  std::vector<std::string> remotes;
  bool up = false;  // at least one ready association
  std::uint64_t tx_packets = 0, tx_bytes = 0, rx_packets = 0, rx_bytes = 0;
  std::size_t flows = 0;
  std::uint64_t flow_limit_hits = 0;
  std::uint64_t handshake_failures = 0;
  std::string last_handshake_failure;
  std::uint64_t source_not_allowed = 0;  // inner packets dropped: a source the peer may not use
  std::vector<AssocSnapshot> associations;
};

struct Snapshot {
  std::string version;
  std::string interface_name;
  int mtu = 0;
  std::string transport_kind;
  double uptime_seconds = 0;
  tun::DeviceStats tun;
  gateway::Counters counters;
  gateway::Resequencer::Stats resequencer;  // striped flows received
  transport::TransportStats transport;
  std::size_t flows = 0, max_flows = 0;
  std::uint64_t flows_evicted = 0;  // unestablished or closing flows pushed out by new ones
  std::vector<PeerSnapshot> peers;
};

Snapshot take_snapshot(const gateway::Gateway& gateway, const transport::Transport& transport,
                       const tun::Device& tun, const std::vector<transport::PeerEndpoints>& peers);

std::string render_text(const Snapshot& snapshot);
std::string render_json(const Snapshot& snapshot);

// The reply to one request line of the control socket (control.hpp): "show" and "show json"
// render what snapshot() takes, "reload" is reload()'s reply, "ping" is "pong". Anything else
// gets one line, "error: unknown request '...'", naming at most the first 64 bytes of the
// request with every byte outside printable ASCII (and the quote and backslash) as \xNN, so the
// reply is text a terminal shows as it is, whatever was sent.
struct Requests {
  std::function<Snapshot()> snapshot;
  std::function<std::string()> reload;
};
std::string handle(std::string_view request, const Requests& requests);

}  // namespace control::commands
