#pragma once
// Config: the validated contents of a sctptund.toml (see man/sctptund.toml.5). load_config()
// either returns a complete, consistent Config or throws ConfigError naming file, line and key.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "policy/policy.hpp"
#include "src/base/endpoint.hpp"
#include "src/crypto/session.hpp"

namespace control {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct InterfaceAddress {
  std::string text;  // "10.255.0.1/30" as written
};

struct TunConfig {
  std::string name = "tun0";
  int mtu = 1500;  // SCTP fragments messages, so the WAN's MTU need not be subtracted
  std::vector<InterfaceAddress> addresses;
  policy::Action default_action = policy::Action::drop;  // when no rule matches: drop | bypass
  std::uint32_t fwmark = 9899;        // marks bypassed packets and the WAN sockets
  std::uint32_t bypass_table = 9899;  // routing table: main without the routes into the TUN
  bool offload = true;                // TUN with virtio-net header and TSO/checksum offloads
  bool gro = true;                    // with offload: TCP segments written as super-packets
};

struct TransportConfig {
  std::string kind = "udp";           // udp | kernel | auto (kernel if the kernel has SCTP)
  bool udp_encapsulation = false;     // kernel: SCTP in UDP by the kernel (RFC 6951, Linux 5.11+)
  std::vector<base::Endpoint> local;  // with port; the wildcard address when none is given
  bool local_default = false;         // local was not given (0.0.0.0, and :: where a peer needs it)
  std::uint16_t port = 9899;
  std::uint16_t streams = 256;  // outbound streams we ask for (stream 0 is control)
  // Path supervision and SCTP retransmission timing (shared with the kernel transport).
  std::uint32_t probe_interval_ms = 50;  // probes on every path (24-byte datagrams)
  std::uint32_t failover_ms = 150;       // a path silent this long is down: about the failover gap
  // Retransmission timeout bounds as given; unset ones take the transport's defaults (rto_bounds).
  std::optional<std::uint32_t> rto_min_ms, rto_max_ms, rto_initial_ms;
  std::uint32_t heartbeat_ms = 1000;  // SCTP heartbeat interval on an idle association
  std::uint32_t keepalive_s = 25;  // a path that sent nothing this long gets a probe (NAT mappings)
  int path_mtu = 1500;             // the WAN path's IP MTU: SCTP packets are sized to fit it
  // Send and receive buffer of each association, bytes: the most it keeps in flight (a path's
  // bandwidth-delay product needs this much) and the bound of its memory.
  std::uint32_t max_window = 16u << 20;
  // FEC below SCTP (udp transport): the most parity it may add, percent of the data datagrams.
  std::uint32_t fec_max_overhead = 25;
  // usrsctp's congestion control: "reno" (RFC 4960), "htcp" or "hstcp" (udp transport).
  std::string congestion_control = "reno";
  // udp transport, several paths to a peer: "failover" (one path carries the traffic, the others
  // stand by) or "aggregate" (the pool's associations spread over the live paths, each its own
  // congestion window: flows on different associations add up).
  std::string multipath = "failover";
  // With multipath = "aggregate": each flow's packets spread over the associations too, each where
  // it arrives first, put back in order at the far end (SEQUENCED); false: a flow stays on one.
  bool stripe = true;
  // udp transport: cap SCTP's window at a few measured bandwidth-delay products (inflight_cap.hpp).
  bool window_cap = true;
};

// SCTP retransmission timeout bounds in ms, the configured ones or the transport's defaults:
// usrsctp (kind udp) 1000/1000/2000: usrsctp does not restart its retransmission timer when
// data is acknowledged, so a smaller minimum fires it whenever the RTT spikes (a busy peer, a
// queue on the path) and collapses the window; kernel 100/500/1000: its path failover is driven
// by these timeouts.
struct RtoBounds {
  std::uint32_t min_ms, initial_ms, max_ms;
};
RtoBounds rto_bounds(const TransportConfig& transport, bool usrsctp);

struct FlowsConfig {
  double tcp_idle_s = 600, udp_idle_s = 60, other_idle_s = 30, linger_s = 2;
  std::uint32_t max = 262144, max_per_peer = 65536;
  std::uint32_t max_per_host = 0;  // one inner source address's share; 0 (not set): max / 8
};

struct ControlConfig {
  std::string socket;  // default /run/sctptund/<tun name>.sock
};

struct PeerConfig {
  std::string name;
  std::vector<base::Endpoint> remote;  // with port; may be empty (learned: key_file, udp transport)
  std::uint16_t port = 9899;
  bool compression = true;  // offer header compression (used when both sides offer it)
  std::uint16_t pool = 2;   // associations kept ready to the peer (SCTP ports port..port+pool-1)
  std::string key_file;     // as written; relative paths are taken from the config file's folder
  std::optional<crypto::Key> key;  // read from key_file when the config is loaded
  bool seal = true;                // encryption = "aead" (default) or "none"
  bool fec = true;  // offer FEC below SCTP (udp transport, with key_file; used when both offer it)
  // Source prefixes the peer may send from besides those of the tunnel rules naming it
  // (policy.hpp, "Allowed sources"). A reload applies changes.
  std::vector<policy::Prefix> allowed_sources;
};

// A route into the TUN that the daemon installs at start and removes at stop.
struct RouteConfig {
  policy::Prefix prefix;
  bool operator==(const RouteConfig&) const = default;
};

struct Config {
  std::string path;
  TunConfig tun;
  TransportConfig transport;
  ControlConfig control;
  FlowsConfig flows;
  std::vector<PeerConfig> peers;
  std::vector<policy::Rule> rules;  // in file order; Rule::peer indexes peers
  std::vector<RouteConfig> routes;
  std::vector<std::string> warnings;  // valid but questionable (a peer no rule uses, ...)
};

// The policy of a config: its rules, [tun] default and every peer's allowed_sources.
policy::Policy make_policy(const Config& config);

// Keys::skip leaves PeerConfig::key empty (the key files are not opened): for the commands that
// only need the control socket's path (show, reload), which must work without the keys.
enum class Keys { read, skip };
Config load_config(const std::string& path, Keys keys = Keys::read);
Config parse_config(std::string_view text, const std::string& source_name, Keys keys = Keys::read);

// What differs between two configs in parts that only a restart can change ([tun] name,
// addresses, fwmark and table, [transport], [control], the peers); empty when a reload can
// apply new.
std::vector<std::string> restart_needed(const Config& old_config, const Config& new_config);

}  // namespace control
