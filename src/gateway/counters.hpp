#pragma once
// Counters of the data path: what was read from and written to the TUN, what went through the
// tunnel, and every dropped packet by reason. Plain integers, read by the control plane.

#include <array>
#include <cstddef>
#include <cstdint>

namespace gateway {

enum class Drop : std::uint8_t {
  tun_malformed,     // from the TUN: not a well-formed IPv4/IPv6 packet
  no_rule,           // no policy rule matched and the default is drop
  policy_drop,       // a rule said drop
  peer_down,         // tunnel rule, but the peer has no ready association
  bypass_failed,     // bypass rule, but the host could not route the packet (no route, too big)
  flow_limit,        // the flow table, or the peer's share of it, is full
  send_error,        // the transport refused the message for good
  wire_malformed,    // from a peer: a message we cannot decode
  before_handshake,  // from a peer: a packet before its HELLO
  inner_malformed,   // from a peer: the carried packet is not a well-formed IP packet
  unknown_assoc,     // from an association we no longer track
  hc_error,          // from a peer: a compressed header we cannot rebuild (contexts reset)
  tun_write,         // the kernel refused the packet on the TUN
  auth_failed,       // from a peer: a SEALED message that does not authenticate (forged,
                     // modified, replayed, reordered)
  not_sealed,        // from a peer: an unsealed message where sealing was agreed
  // from a peer: a carried packet from a source the peer may not send from (Policy::source_allowed)
  source_not_allowed,
  // a new flow, and its inner source address holds its share of the flow table, all established
  host_flow_limit,
  count_
};
inline constexpr std::size_t kDropReasons = static_cast<std::size_t>(Drop::count_);
const char* to_string(Drop reason);

struct Counters {
  std::uint64_t tun_read_packets = 0, tun_read_bytes = 0;
  std::uint64_t tun_written_packets = 0, tun_written_bytes = 0;
  std::uint64_t gro_super_packets = 0, gro_segments = 0;   // TCP segments coalesced into the TUN
  std::uint64_t tunneled_packets = 0, tunneled_bytes = 0;  // sent into the tunnel
  std::uint64_t received_packets = 0, received_bytes = 0;  // came out of the tunnel
  std::uint64_t bypassed_packets = 0, bypassed_bytes = 0;  // sent on through normal routing
  // Packets read from the TUN whose virtio-net header a peer would refuse
  // (tun::gso::vnet_hdr_matches), tunneled as the ordinary packets they stand for instead:
  // checksum completed, super-packet segmented here (Gateway::tunnel_local).
  std::uint64_t vnet_completed_locally = 0;
  std::uint64_t icmp_unreachable_sent = 0;  // admin-prohibited errors for dropped packets
  // Header compression, sending side: inner headers (IP + TCP/UDP) and what replaced them.
  std::uint64_t hc_packets = 0, hc_inner_header_bytes = 0, hc_compressed_header_bytes = 0;
  std::uint64_t hc_tcp4_packets = 0, hc_tcp4_inner_header_bytes = 0,
                hc_tcp4_compressed_header_bytes = 0;
  std::uint64_t hc_context_resets_sent = 0, hc_context_resets_received = 0;
  std::uint64_t bundles_sent = 0;     // BUNDLE messages sent (two or more small packets each)
  std::uint64_t bundled_packets = 0;  // packets that travelled in them
  // Packets of flows whose rule says redundant ([[policy]] redundant): sent on every live path.
  std::uint64_t redundant_packets = 0;
  // Packets of striped flows sent as SEQUENCED (spread over the peer's associations).
  std::uint64_t striped_packets = 0;
  std::uint64_t backpressure_pauses = 0;  // times TUN reading paused on a full send buffer
  std::uint64_t handshake_failures = 0;   // associations aborted: wrong key, mismatched settings
  std::array<std::uint64_t, kDropReasons> drops{};

  void drop(Drop reason) { ++drops[static_cast<std::size_t>(reason)]; }
  std::uint64_t dropped(Drop reason) const { return drops[static_cast<std::size_t>(reason)]; }
  std::uint64_t dropped_total() const {
    std::uint64_t total = 0;
    for (auto n : drops) total += n;
    return total;
  }
};

}  // namespace gateway
