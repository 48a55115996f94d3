#include "src/control/commands.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "src/gateway/gateway.hpp"

namespace control::commands {
namespace {

std::string human_bytes(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit ? "%.2f %s" : "%.0f %s", value, units[unit]);
  return text;
}

// Bits per second: "812 bit/s", "15.3 kbit/s", "12.31 Mbit/s", "1.05 Gbit/s".
std::string human_rate(std::uint64_t bps) {
  char text[32];
  auto value = static_cast<double>(bps);
  if (bps >= 1'000'000'000)
    std::snprintf(text, sizeof text, "%.2f Gbit/s", value / 1e9);
  else if (bps >= 1'000'000)
    std::snprintf(text, sizeof text, "%.2f Mbit/s", value / 1e6);
  else if (bps >= 1'000)
    std::snprintf(text, sizeof text, "%.1f kbit/s", value / 1e3);
  else
    std::snprintf(text, sizeof text, "%llu bit/s", static_cast<unsigned long long>(bps));
  return text;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", c);
      out += esc;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// A minimal JSON object writer: fields in insertion order, commas handled.
class Json {
 public:
  Json& open(const char* key = nullptr, char bracket = '{') {
    comma();
    if (key) out_ << json_string(key) << ":";
    out_ << bracket;
    first_ = true;
    return *this;
  }
  Json& close(char bracket = '}') {
    out_ << bracket;
    first_ = false;
    return *this;
  }
  Json& field(const char* key, std::uint64_t value) {
    comma();
    out_ << json_string(key) << ":" << value;
    return *this;
  }
  Json& field(const char* key, const std::string& value) {
    comma();
    out_ << json_string(key) << ":" << json_string(value);
    return *this;
  }
  Json& field(const char* key, double value) {
    comma();
    char text[32];
    std::snprintf(text, sizeof text, "%.6g", std::isfinite(value) ? value : 0.0);
    out_ << json_string(key) << ":" << text;
    return *this;
  }
  Json& field(const char* key, bool value) {
    comma();
    out_ << json_string(key) << ":" << (value ? "true" : "false");
    return *this;
  }
  Json& value(const std::string& s) {
    comma();
    out_ << json_string(s);
    return *this;
  }
  std::string str() const { return out_.str(); }

 private:
  void comma() {
    if (!first_) out_ << ",";
    first_ = false;
  }
  std::ostringstream out_;
  bool first_ = true;
};

}  // namespace

Snapshot take_snapshot(const gateway::Gateway& gateway, const transport::Transport& transport,
                       const tun::Device& tun, const std::vector<transport::PeerEndpoints>& peers) {
  Snapshot s;
  s.interface_name = tun.name();
  s.mtu = tun.mtu();
  s.transport_kind = transport.kind();
  s.tun = tun.stats();
  s.counters = gateway.counters();
  s.resequencer = gateway.resequencer_stats();
  s.transport = transport.stats();
  s.flows = gateway.flow_table().size();
  s.max_flows = gateway.flow_table().max_flows();
  s.flows_evicted = gateway.flow_table().evicted();
  for (std::size_t i = 0; i < gateway.peers().size(); ++i) {
    const gateway::PeerStatus& status = gateway.peers()[i];
    PeerSnapshot peer;
    peer.name = status.name;
    if (i < peers.size())
      for (const base::Endpoint& ep : peers[i].remotes) peer.remotes.push_back(ep.to_string());
    peer.up = !status.ready_assocs.empty();
    peer.tx_packets = status.tx_packets;
    peer.tx_bytes = status.tx_bytes;
    peer.rx_packets = status.rx_packets;
    peer.rx_bytes = status.rx_bytes;
    peer.flows = gateway.flow_table().count_of_peer(static_cast<transport::PeerId>(i));
    peer.flow_limit_hits = status.flow_limit_hits;
    peer.handshake_failures = status.handshake_failures;
    peer.last_handshake_failure = status.last_handshake_failure;
    peer.source_not_allowed = status.source_not_allowed;
    s.peers.push_back(std::move(peer));
  }
  for (const transport::AssocInfo& info : transport.associations()) {
    if (info.peer >= s.peers.size()) continue;
    AssocSnapshot assoc;
    assoc.info = info;
    auto it = gateway.assocs().find(info.id);
    assoc.ready = info.id != 0 && it != gateway.assocs().end() && it->second.ready();
    if (assoc.ready) {
      const gateway::Handshake& hs = *it->second.handshake;
      assoc.security = hs.session()      ? crypto::to_string(hs.session()->cipher())
                       : hs.needs_auth() ? "authenticated only"
                                         : "none";
    }
    assoc.flows = info.id ? gateway.flow_table().count_bound_to(info.id) : 0;
    s.peers[info.peer].associations.push_back(assoc);
  }
  return s;
}

std::string render_text(const Snapshot& s) {
  std::ostringstream out;
  out << "interface: " << s.interface_name << "\n";
  const char* what = s.transport_kind == "kernel"       ? "native SCTP, kernel"
                     : s.transport_kind == "kernel-udp" ? "SCTP over UDP, kernel"
                                                        : "SCTP over UDP, usrsctp";
  out << "  mtu: " << s.mtu << "   transport: " << s.transport_kind << " (" << what << ")\n";
  out << "  flows: " << s.flows << " (max " << s.max_flows;
  if (s.flows_evicted) out << ", " << s.flows_evicted << " evicted to make room";
  out << ")\n";
  out << "  tun: read " << s.tun.read_packets << " packets (" << human_bytes(s.tun.read_bytes)
      << "), written " << s.tun.written_packets << " packets (" << human_bytes(s.tun.written_bytes)
      << ")";
  if (s.counters.gro_super_packets)
    out << ", " << s.counters.gro_super_packets << " of them coalesced from "
        << s.counters.gro_segments << " TCP segments";
  out << "\n";
  out << "  tunnel: sent " << s.counters.tunneled_packets << " packets ("
      << human_bytes(s.counters.tunneled_bytes) << "), received " << s.counters.received_packets
      << " packets (" << human_bytes(s.counters.received_bytes) << ")\n";
  if (s.counters.vnet_completed_locally)
    out << "  offloads: " << s.counters.vnet_completed_locally
        << " packets from the tun completed or segmented here (a peer refuses their header)\n";
  out << "  bypass: " << s.counters.bypassed_packets << " packets ("
      << human_bytes(s.counters.bypassed_bytes)
      << ")   icmp unreachable sent: " << s.counters.icmp_unreachable_sent << "\n";
  if (s.counters.hc_packets) {
    char line[160];
    std::snprintf(line, sizeof line,
                  "  compression: headers %s in, %s out (%.1f%%), TCP/IPv4 %.2f bytes per header\n",
                  human_bytes(s.counters.hc_inner_header_bytes).c_str(),
                  human_bytes(s.counters.hc_compressed_header_bytes).c_str(),
                  100.0 * static_cast<double>(s.counters.hc_compressed_header_bytes) /
                      static_cast<double>(
                          s.counters.hc_inner_header_bytes ? s.counters.hc_inner_header_bytes : 1),
                  s.counters.hc_tcp4_packets
                      ? static_cast<double>(s.counters.hc_tcp4_compressed_header_bytes) /
                            static_cast<double>(s.counters.hc_tcp4_packets)
                      : 0.0);
    out << line;
  }
  if (s.counters.bundles_sent)
    out << "  bundles: " << s.counters.bundles_sent << " sent, carrying "
        << s.counters.bundled_packets << " small packets\n";
  if (s.counters.redundant_packets)
    out << "  redundant: " << s.counters.redundant_packets
        << " packets of redundant flows sent on every live path\n";
  if (s.counters.striped_packets || s.resequencer.in_order || s.resequencer.held)
    out << "  striped: " << s.counters.striped_packets << " packets sent; received "
        << s.resequencer.in_order << " in order, " << s.resequencer.held << " put back in order, "
        << s.resequencer.late << " late, " << s.resequencer.gaps_skipped << " gaps given up ("
        << s.resequencer.packets_skipped << " packets), " << s.resequencer.duplicates
        << " duplicates\n";
  out << "  wan: " << s.transport.datagrams_out << " datagrams out ("
      << human_bytes(s.transport.datagram_bytes_out) << "), " << s.transport.datagrams_in << " in ("
      << human_bytes(s.transport.datagram_bytes_in) << ")\n";
  if (s.transport.sctp_retransmitted_chunks || s.transport.sctp_receive_drops)
    out << "  sctp: " << s.transport.sctp_retransmitted_chunks << " chunks retransmitted ("
        << s.transport.sctp_fast_retransmits << " fast), " << s.transport.sctp_data_timeouts
        << " timeouts, " << s.transport.sctp_receive_drops << " received chunks dropped\n";
  if (s.transport.fec_data_out || s.transport.fec_parity_in || s.transport.fec_forged ||
      s.transport.fec_malformed)
    out << "  fec: " << s.transport.fec_data_out << " datagrams framed, "
        << s.transport.fec_parity_out << " parity sent, " << s.transport.fec_parity_in
        << " parity received, " << s.transport.fec_rebuilt << " rebuilt, "
        << s.transport.fec_unrecovered << " left to SCTP, " << s.transport.fec_forged << " forged, "
        << s.transport.fec_malformed << " malformed\n";
  if (s.transport.redundant_copies_out || s.transport.redundant_copies_in)
    out << "  redundant flows: " << s.transport.redundant_copies_out
        << " copies sent on other paths, " << s.transport.redundant_copies_in
        << " copies received (dropped as duplicates)\n";
  if (s.transport.path_mtu_changes || s.transport.datagrams_too_big ||
      s.transport.datagrams_fragmented)
    out << "  path mtu: " << s.transport.path_mtu_changes << " changes, "
        << s.transport.datagrams_too_big << " datagrams refused as too big, "
        << s.transport.datagrams_fragmented << " sent as IP fragments\n";
  out << "  dropped: " << s.counters.dropped_total();
  bool any = false;
  for (std::size_t i = 0; i < gateway::kDropReasons; ++i) {
    if (!s.counters.drops[i]) continue;
    out << (any ? ", " : " (") << gateway::to_string(static_cast<gateway::Drop>(i)) << " "
        << s.counters.drops[i];
    any = true;
  }
  out << (any ? ")\n" : "\n");
  for (const PeerSnapshot& peer : s.peers) {
    out << "\npeer: " << peer.name << (peer.up ? "  (up)" : "  (down)") << "\n";
    out << "  remote:";
    for (const std::string& r : peer.remotes) out << " " << r;
    out << "\n  transfer: " << human_bytes(peer.rx_bytes) << " received, "
        << human_bytes(peer.tx_bytes) << " sent\n";
    out << "  flows: " << peer.flows;
    if (peer.flow_limit_hits) out << "   (limit hit " << peer.flow_limit_hits << " times)";
    out << "\n";
    if (peer.handshake_failures)
      out << "  handshake failures: " << peer.handshake_failures
          << ", last: " << peer.last_handshake_failure << "\n";
    if (peer.source_not_allowed)
      out << "  source not allowed: " << peer.source_not_allowed << " packets dropped\n";
    for (const AssocSnapshot& a : peer.associations) {
      out << "  association";
      if (a.info.id) out << " " << a.info.id;
      out << ": " << a.info.state << (a.ready ? ", ready" : "");
      if (!a.security.empty()) out << ", " << a.security;
      if (!a.info.pool_state.empty())
        out << "  (pool slot " << a.info.slot << ": " << a.info.pool_state << ")";
      out << "\n";
      if (a.info.paths.empty()) out << "    path: " << a.info.path << "\n";
      for (const transport::PathInfo& p : a.info.paths) {
        char line[256];
        std::snprintf(line, sizeof line, "    path: %s -> %s%s  %s%s", p.local.c_str(),
                      p.remote.c_str(), p.learned ? " (learned)" : "", p.state.c_str(),
                      p.primary  ? ", primary"
                      : p.active ? ", carries it"
                                 : "");
        out << line;
        if (p.probed) {
          std::snprintf(line, sizeof line, "  rtt %.2f ms, loss %u%%", p.srtt_us / 1000.0,
                        p.loss_pct);
          out << line;
        }
        out << "  " << human_bytes(p.bytes_out) << " out, " << human_bytes(p.bytes_in) << " in\n";
        std::snprintf(line, sizeof line,
                      "      %s, out %s (%.0f%%), in %s, cwnd %s, data loss %.2f%%\n",
                      p.role.c_str(), human_rate(p.rate_out).c_str(), p.share_pct,
                      human_rate(p.rate_in).c_str(), human_bytes(p.cwnd).c_str(), p.data_loss_pct);
        out << line;
        if (!p.fec.empty()) {
          std::snprintf(line, sizeof line,
                        "      fec: %s, loss %.3f%%, parity %.1f%%; out %llu data + %llu parity",
                        p.fec.c_str(), p.fec_loss * 100, p.fec_redundancy * 100,
                        static_cast<unsigned long long>(p.fec_data_out),
                        static_cast<unsigned long long>(p.fec_parity_out));
          out << line;
          if (p.fec_received)
            out << "; in " << p.fec_received << " data, " << p.fec_lost << " missing, "
                << p.fec_rebuilt << " rebuilt, " << p.fec_unrecovered << " left to SCTP";
          out << "\n";
        }
      }
      if (a.info.path_changes) out << "    path changes: " << a.info.path_changes << "\n";
      if (a.info.path_mtu) {
        out << "    path mtu: " << a.info.path_mtu;
        if (a.info.sctp_mtu) out << " (sctp " << a.info.sctp_mtu << ")";
        out << "   largest datagram since: " << a.info.largest_datagram_at_path_mtu << "\n";
      }
      if (a.info.id) {
        out << "    streams: " << a.info.out_streams << " out / " << a.info.in_streams
            << " in   flows: " << a.flows << "   srtt: " << a.info.srtt_ms << " ms\n";
      }
      const transport::WindowInfo& w = a.info.window;
      if (w.cwnd) {
        out << "    window: cwnd " << human_bytes(w.cwnd);
        if (w.inflight_cap)
          out << " (cap " << human_bytes(w.inflight_cap) << ": delivered "
              << w.delivery_rate * 8 / 1000000 << " Mbit/s, rtt min " << w.rtt_min_ms << " ms)";
        out << ", in flight " << w.flight_chunks << " chunks, undelivered " << w.undelivered_chunks
            << ", peer rwnd " << human_bytes(w.peer_rwnd) << ", our rwnd "
            << human_bytes(w.local_rwnd) << ", send buffer " << human_bytes(w.send_buffered)
            << " of " << human_bytes(w.send_buffer) << ", rto " << w.rto_ms << " ms";
        if (w.data_timeouts) out << ", " << w.data_timeouts << " timeouts";
        if (w.chunks_sent)
          out << ", retransmitted " << w.chunks_retransmitted << " of " << w.chunks_sent
              << " chunks";
        if (w.restarts) out << ", " << w.restarts << " restarts";
        out << "\n";
      }
    }
  }
  return out.str();
}

std::string render_json(const Snapshot& s) {
  Json j;
  j.open();
  j.field("version", s.version);
  j.field("uptime_seconds", static_cast<std::uint64_t>(s.uptime_seconds));
  j.open("interface")
      .field("name", s.interface_name)
      .field("mtu", static_cast<std::uint64_t>(s.mtu))
      .close();
  j.open("transport").field("kind", s.transport_kind);
  j.field("datagrams_out", s.transport.datagrams_out)
      .field("datagram_bytes_out", s.transport.datagram_bytes_out);
  j.field("datagrams_in", s.transport.datagrams_in)
      .field("datagram_bytes_in", s.transport.datagram_bytes_in);
  j.field("largest_datagram_out", s.transport.largest_datagram_out);
  j.field("datagrams_bad_checksum", s.transport.datagrams_bad_checksum);
  j.field("datagrams_unknown_source", s.transport.datagrams_unknown_source);
  j.field("datagrams_unknown_slot", s.transport.datagrams_unknown_slot)
      .field("connects_on_peer_init", s.transport.connects_on_peer_init);
  j.field("datagrams_malformed", s.transport.datagrams_malformed)
      .field("send_errors", s.transport.send_errors);
  j.field("sctp_duplicate_data", s.transport.sctp_duplicate_data)
      .field("sctp_bad_vtag", s.transport.sctp_bad_vtag)
      .field("sctp_out_of_the_blue", s.transport.sctp_out_of_the_blue);
  j.field("probes_unauthenticated", s.transport.probes_unauthenticated)
      .field("challenges_out", s.transport.challenges_out);
  j.field("paths_learned", s.transport.paths_learned).field("path_moves", s.transport.path_moves);
  j.field("datagrams_provisional", s.transport.datagrams_provisional)
      .field("datagrams_no_path", s.transport.datagrams_no_path)
      .field("datagrams_unproven_control", s.transport.datagrams_unproven_control);
  j.field("sctp_retransmitted_chunks", s.transport.sctp_retransmitted_chunks)
      .field("sctp_fast_retransmits", s.transport.sctp_fast_retransmits)
      .field("sctp_data_timeouts", s.transport.sctp_data_timeouts)
      .field("sctp_receive_drops", s.transport.sctp_receive_drops);
  j.field("fec_data_out", s.transport.fec_data_out)
      .field("fec_parity_out", s.transport.fec_parity_out)
      .field("fec_parity_in", s.transport.fec_parity_in)
      .field("fec_reports_in", s.transport.fec_reports_in)
      .field("fec_rebuilt", s.transport.fec_rebuilt)
      .field("fec_unrecovered", s.transport.fec_unrecovered)
      .field("fec_forged", s.transport.fec_forged)
      .field("fec_malformed", s.transport.fec_malformed);
  j.field("path_mtu_changes", s.transport.path_mtu_changes)
      .field("datagrams_too_big", s.transport.datagrams_too_big)
      .field("datagrams_fragmented", s.transport.datagrams_fragmented);
  j.field("redundant_copies_out", s.transport.redundant_copies_out)
      .field("redundant_copies_in", s.transport.redundant_copies_in);
  j.close();
  j.open("counters");
  j.field("tun_read_packets", s.tun.read_packets).field("tun_read_bytes", s.tun.read_bytes);
  j.field("tun_written_packets", s.tun.written_packets)
      .field("tun_written_bytes", s.tun.written_bytes);
  j.field("gro_super_packets", s.counters.gro_super_packets)
      .field("gro_segments", s.counters.gro_segments);
  j.field("tunneled_packets", s.counters.tunneled_packets)
      .field("tunneled_bytes", s.counters.tunneled_bytes);
  j.field("received_packets", s.counters.received_packets)
      .field("received_bytes", s.counters.received_bytes);
  j.field("bypassed_packets", s.counters.bypassed_packets)
      .field("bypassed_bytes", s.counters.bypassed_bytes);
  j.field("vnet_completed_locally", s.counters.vnet_completed_locally);
  j.field("icmp_unreachable_sent", s.counters.icmp_unreachable_sent);
  j.field("bundles_sent", s.counters.bundles_sent)
      .field("bundled_packets", s.counters.bundled_packets)
      .field("redundant_packets", s.counters.redundant_packets)
      .field("striped_packets", s.counters.striped_packets)
      .field("resequenced_in_order", s.resequencer.in_order)
      .field("resequenced_held", s.resequencer.held)
      .field("resequenced_late", s.resequencer.late)
      .field("resequenced_gaps_skipped", s.resequencer.gaps_skipped)
      .field("resequenced_packets_skipped", s.resequencer.packets_skipped)
      .field("resequenced_duplicates", s.resequencer.duplicates);
  j.field("backpressure_pauses", s.counters.backpressure_pauses);
  j.field("handshake_failures", s.counters.handshake_failures);
  j.field("dropped_packets", s.counters.dropped_total());
  j.open("drops");
  for (std::size_t i = 0; i < gateway::kDropReasons; ++i)
    j.field(gateway::to_string(static_cast<gateway::Drop>(i)), s.counters.drops[i]);
  j.close();
  j.close();
  j.open("compression");
  j.field("packets", s.counters.hc_packets);
  j.field("inner_header_bytes", s.counters.hc_inner_header_bytes);
  j.field("compressed_header_bytes", s.counters.hc_compressed_header_bytes);
  j.field("tcp4_packets", s.counters.hc_tcp4_packets);
  j.field("tcp4_inner_header_bytes", s.counters.hc_tcp4_inner_header_bytes);
  j.field("tcp4_compressed_header_bytes", s.counters.hc_tcp4_compressed_header_bytes);
  // Hundredths of a byte, so the schema stays integers: 412 means 4.12 bytes per header.
  j.field("tcp4_average_header_centibytes",
          s.counters.hc_tcp4_packets
              ? s.counters.hc_tcp4_compressed_header_bytes * 100 / s.counters.hc_tcp4_packets
              : 0);
  j.field("ratio_percent",
          s.counters.hc_inner_header_bytes
              ? s.counters.hc_compressed_header_bytes * 100 / s.counters.hc_inner_header_bytes
              : 100);
  j.field("context_resets_sent", s.counters.hc_context_resets_sent);
  j.field("context_resets_received", s.counters.hc_context_resets_received);
  j.close();
  j.open("flows")
      .field("active", static_cast<std::uint64_t>(s.flows))
      .field("max", static_cast<std::uint64_t>(s.max_flows))
      .field("evicted", s.flows_evicted)
      .close();
  j.open("peers", '[');
  for (const PeerSnapshot& peer : s.peers) {
    j.open().field("name", peer.name).field("up", peer.up);
    j.open("remotes", '[');
    for (const std::string& r : peer.remotes) j.value(r);
    j.close(']');
    j.field("tx_packets", peer.tx_packets).field("tx_bytes", peer.tx_bytes);
    j.field("rx_packets", peer.rx_packets).field("rx_bytes", peer.rx_bytes);
    j.field("flows", static_cast<std::uint64_t>(peer.flows))
        .field("flow_limit_hits", peer.flow_limit_hits);
    j.field("handshake_failures", peer.handshake_failures)
        .field("last_handshake_failure", peer.last_handshake_failure);
    j.field("source_not_allowed", peer.source_not_allowed);
    j.open("associations", '[');
    for (const AssocSnapshot& a : peer.associations) {
      j.open().field("id", a.info.id).field("state", a.info.state).field("ready", a.ready);
      j.field("slot", static_cast<std::uint64_t>(a.info.slot))
          .field("pool_state", a.info.pool_state);
      j.field("security", a.security);
      j.field("path", a.info.path)
          .field("in_streams", static_cast<std::uint64_t>(a.info.in_streams));
      j.field("out_streams", static_cast<std::uint64_t>(a.info.out_streams));
      j.field("srtt_ms", static_cast<std::uint64_t>(a.info.srtt_ms))
          .field("flows", static_cast<std::uint64_t>(a.flows));
      j.field("sent_messages", a.info.sent_messages).field("sent_bytes", a.info.sent_bytes);
      j.field("received_messages", a.info.received_messages)
          .field("received_bytes", a.info.received_bytes);
      j.field("path_changes", a.info.path_changes);
      j.field("path_mtu", static_cast<std::uint64_t>(a.info.path_mtu))
          .field("sctp_mtu", static_cast<std::uint64_t>(a.info.sctp_mtu))
          .field("largest_datagram_at_path_mtu", a.info.largest_datagram_at_path_mtu);
      const transport::WindowInfo& w = a.info.window;
      j.open("window")
          .field("cwnd", static_cast<std::uint64_t>(w.cwnd))
          .field("flight_chunks", static_cast<std::uint64_t>(w.flight_chunks))
          .field("undelivered_chunks", static_cast<std::uint64_t>(w.undelivered_chunks))
          .field("peer_rwnd", static_cast<std::uint64_t>(w.peer_rwnd))
          .field("local_rwnd", static_cast<std::uint64_t>(w.local_rwnd))
          .field("send_buffered", w.send_buffered)
          .field("send_buffer", static_cast<std::uint64_t>(w.send_buffer))
          .field("rto_ms", static_cast<std::uint64_t>(w.rto_ms))
          .field("data_timeouts", static_cast<std::uint64_t>(w.data_timeouts))
          .field("inflight_cap", w.inflight_cap)
          .field("restarts", w.restarts)
          .field("delivery_rate", w.delivery_rate)
          .field("rtt_min_ms", static_cast<std::uint64_t>(w.rtt_min_ms))
          .field("chunks_sent", w.chunks_sent)
          .field("chunks_retransmitted", w.chunks_retransmitted)
          .close();
      j.open("paths", '[');
      for (const transport::PathInfo& p : a.info.paths) {
        j.open().field("local", p.local).field("remote", p.remote).field("state", p.state);
        j.field("primary", p.primary).field("active", p.active);
        j.field("probed", p.probed).field("learned", p.learned);
        j.field("srtt_us", static_cast<std::uint64_t>(p.srtt_us))
            .field("loss_percent", static_cast<std::uint64_t>(p.loss_pct));
        j.field("bytes_out", p.bytes_out).field("bytes_in", p.bytes_in);
        j.field("fec", p.fec)
            .field("fec_loss", p.fec_loss)
            .field("fec_redundancy", p.fec_redundancy);
        j.field("fec_data_out", p.fec_data_out).field("fec_parity_out", p.fec_parity_out);
        j.field("fec_received", p.fec_received).field("fec_lost", p.fec_lost);
        j.field("fec_rebuilt", p.fec_rebuilt).field("fec_unrecovered", p.fec_unrecovered);
        j.field("datagrams_out", p.datagrams_out).field("datagrams_in", p.datagrams_in);
        j.field("role", p.role)
            .field("rate_out_bps", p.rate_out)
            .field("rate_in_bps", p.rate_in)
            .field("share_pct", p.share_pct)
            .field("cwnd", p.cwnd)
            .field("data_loss_pct", p.data_loss_pct);
        j.close();
      }
      j.close(']');
      j.close();
    }
    j.close(']');
    j.close();
  }
  j.close(']');
  j.close();
  return j.str() + "\n";
}

std::string handle(std::string_view request, const Requests& requests) {
  if (request == "show") return render_text(requests.snapshot());
  if (request == "show json") return render_json(requests.snapshot());
  if (request == "reload") return requests.reload();
  if (request == "ping") return "pong\n";
  constexpr std::size_t kShown = 64;
  std::string out = "error: unknown request '";
  for (char c : request.substr(0, kShown)) {
    auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b >= 0x7f || c == '\'' || c == '\\') {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02x", b);
      out += esc;
    } else {
      out += c;
    }
  }
  return out + (request.size() > kShown ? "'...\n" : "'\n");
}

}  // namespace control::commands
