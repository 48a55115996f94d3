// Bundling: small packets of one stream read together share one BUNDLE message; nothing is
// reordered, delayed past its batch, or lost under backpressure.

#include "src/gateway/bundle.hpp"

#include <doctest/doctest.h>

#include "src/gateway/gateway_test_sites.hpp"

using namespace gateway::test_sites;

namespace {

using Packets = std::vector<std::vector<std::uint8_t>>;

// An ACK burst of one TCP/IPv4 flow: pure ACKs with advancing acknowledgement numbers.
Packets ack_burst(int n, std::uint32_t first_ack = 5000) {
  Packets out;
  for (int i = 0; i < n; ++i)
    out.push_back(tcp4_segment(77, static_cast<std::uint16_t>(300 + i), 0,
                               first_ack + 1448u * static_cast<std::uint32_t>(i)));
  return out;
}

std::vector<gateway::wire::Type> sent_types(const transport::LoopbackTransport& t) {
  std::vector<gateway::wire::Type> types;
  for (const auto& [stream, bytes] : t.sent_log) {
    if (stream != gateway::wire::kControlStream)
      types.push_back(static_cast<gateway::wire::Type>(bytes[0]));
  }
  return types;
}

}  // namespace

TEST_CASE("wire: BUNDLE item lengths take one byte below 128, two up to 32767") {
  std::uint8_t buf[2];
  CHECK(gateway::wire::write_bundle_length(buf, 127) == 1);
  CHECK(buf[0] == 127);
  CHECK(gateway::wire::write_bundle_length(buf, 128) == 2);
  CHECK(buf[0] == 0x80);
  CHECK(buf[1] == 128);
  CHECK(gateway::wire::write_bundle_length(buf, gateway::wire::kMaxBundleItem) == 2);
  CHECK(buf[0] == 0xff);
  CHECK(buf[1] == 0xff);

  std::vector<std::uint8_t> body = {2, 0xAA, 0xBB, 0x80, 1, 0xCC};
  std::span<const std::uint8_t> rest(body), item;
  REQUIRE(gateway::wire::next_bundle_item(rest, item) == gateway::wire::DecodeError::none);
  CHECK(item.size() == 2);
  CHECK(item[0] == 0xAA);
  REQUIRE(gateway::wire::next_bundle_item(rest, item) == gateway::wire::DecodeError::none);
  CHECK(item.size() == 1);
  CHECK(item[0] == 0xCC);
  CHECK(rest.empty());

  for (std::vector<std::uint8_t> bad :
       {std::vector<std::uint8_t>{0}, {3, 1, 2}, {0x80}, {0x80, 0}, {0x81, 0, 1}}) {
    std::span<const std::uint8_t> r(bad);
    CHECK(gateway::wire::next_bundle_item(r, item) == gateway::wire::DecodeError::truncated);
    CHECK(r.empty());
  }
}

TEST_CASE("bundle: one item is sent as its own message, more as a BUNDLE within the size bound") {
  gateway::Bundle b;
  CHECK(b.empty());
  const std::uint8_t type[] = {static_cast<std::uint8_t>(gateway::wire::Type::packet)};
  std::vector<std::uint8_t> payload(40, 0x5A);
  b.append(3, 7, {type, payload});
  CHECK(b.message().size() == 41);
  CHECK(b.message()[0] == static_cast<std::uint8_t>(gateway::wire::Type::packet));
  CHECK(b.accepts(3, 7, 41));
  CHECK_FALSE(b.accepts(3, 8, 41));  // another stream
  CHECK_FALSE(b.accepts(4, 7, 41));  // another association
  b.append(3, 7, {type, payload});
  CHECK(b.items() == 2);
  CHECK(b.message().size() == 1 + 2 * (1 + 41));
  CHECK(b.message()[0] == static_cast<std::uint8_t>(gateway::wire::Type::bundle));
  std::size_t items = 2;
  while (b.accepts(3, 7, 41)) {
    b.append(3, 7, {type, payload});
    ++items;
  }
  CHECK(b.message().size() <= gateway::Bundle::kMaxSize);
  CHECK(b.message().size() + 42 > gateway::Bundle::kMaxSize - 2);
  CHECK(b.items() == items);
  b.clear();
  CHECK(b.empty());
}

TEST_CASE("gateway: an ACK burst of one flow travels as one BUNDLE and arrives byte-exact") {
  for (bool compress : {false, true}) {
    CAPTURE(compress);
    TwoSites s(compress);
    s.up();
    Packets burst = ack_burst(6);
    for (auto& p : burst) s.tun1.inject(p);
    s.gw1.read_tun();
    CHECK(sent_types(s.link.a()) == std::vector<gateway::wire::Type>{gateway::wire::Type::bundle});
    s.link.deliver();
    CHECK(s.tun2.take_written() == burst);
    CHECK(s.gw1.counters().bundles_sent == 1);
    CHECK(s.gw1.counters().bundled_packets == 6);
    CHECK(s.gw1.counters().tunneled_packets == 6);
    CHECK(s.gw2.counters().received_packets == 6);
    CHECK(s.gw2.counters().dropped_total() == 0);
    if (compress) {
      // With the flow's context established, 6 ACKs (40-byte headers) take a few bytes each.
      Packets more = ack_burst(6, 90000);
      for (auto& p : more) s.tun1.inject(p);
      s.gw1.read_tun();
      CHECK(s.link.a().sent_log.back().second.size() < 6 * 8);
      s.link.deliver();
      CHECK(s.tun2.take_written() == more);
    }
  }
}

TEST_CASE("gateway: bundling keeps the order of a stream and never holds a packet past its batch") {
  TwoSites s(true);
  s.up();
  Packets sent = ack_burst(2);
  sent.push_back(tcp4_segment(77, 400, 1000, 9000));  // big: travels alone, after the bundle
  for (auto& p : ack_burst(1, 20000)) sent.push_back(p);
  for (auto& p : sent) s.tun1.inject(p);
  s.gw1.read_tun();
  CHECK(sent_types(s.link.a()) == std::vector<gateway::wire::Type>{gateway::wire::Type::bundle,
                                                                   gateway::wire::Type::packet_hc,
                                                                   gateway::wire::Type::packet_hc});
  CHECK_FALSE(s.gw1.tun_paused());
  s.link.deliver();
  CHECK(s.tun2.take_written() == sent);

  // Packets of different flows interleaved: each goes on its own, at once.
  s.link.a().sent_log.clear();
  Packets mixed;
  for (std::uint16_t port = 1; port <= 4; ++port)
    mixed.push_back(base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_UDP, port, 53, 30));
  for (auto& p : mixed) s.tun1.inject(p);
  s.gw1.read_tun();
  CHECK(sent_types(s.link.a()).size() == 4);
  s.link.deliver();
  CHECK(s.tun2.take_written() == mixed);
}

TEST_CASE("gateway: a bundle that meets a full send buffer waits, with nothing lost") {
  TwoSites s(true);
  s.up();
  s.link.a().capacity = 1;
  Packets sent;
  for (int round = 0; round < 5; ++round) {
    for (auto& p : ack_burst(3, 1000u * static_cast<std::uint32_t>(round + 1))) sent.push_back(p);
    sent.push_back(tcp4_segment(77, static_cast<std::uint16_t>(round), 600, 0));
  }
  for (auto& p : sent) s.tun1.inject(p);
  s.gw1.read_tun();
  CHECK(s.gw1.tun_paused());
  for (int i = 0; i < 50 && (s.gw1.tun_paused() || s.tun1.pending()); ++i) {
    s.link.deliver();
    s.gw1.read_tun();
  }
  s.link.deliver();
  CHECK(s.tun2.take_written() == sent);
  CHECK(s.gw1.counters().dropped_total() == 0);
  CHECK(s.gw2.counters().dropped_total() == 0);
  CHECK(s.gw2.counters().hc_context_resets_sent == 0);
}

TEST_CASE("gateway: a bundle blocked by the next flow's packet undoes that packet's encode") {
  TwoSites s(true);
  s.up();
  s.link.a().capacity = 1;
  Packets sent;
  for (std::uint32_t round = 0; round < 6; ++round) {
    for (std::uint16_t sport : {40000, 40001}) {
      for (std::uint32_t i = 0; i < 2; ++i)
        sent.push_back(
            tcp4_segment(5, static_cast<std::uint16_t>(round * 2 + i), 0, 1000 * round + i, sport));
    }
  }
  for (auto& p : sent) s.tun1.inject(p);
  s.gw1.read_tun();
  CHECK(s.gw1.tun_paused());
  for (int i = 0; i < 100 && (s.gw1.tun_paused() || s.tun1.pending()); ++i) {
    s.link.deliver();
    s.gw1.read_tun();
  }
  s.link.deliver();
  CHECK(s.tun2.take_written() == sent);
  CHECK(s.gw1.counters().bundles_sent == 12);
  CHECK(s.gw2.counters().dropped_total() == 0);
  CHECK(s.gw2.counters().hc_context_resets_sent == 0);
}

TEST_CASE("gateway: no BUNDLE towards a peer that does not announce it") {
  TwoSites s(false, /*bundle2=*/false);
  s.up();
  Packets burst = ack_burst(4);
  for (auto& p : burst) s.tun1.inject(p);
  s.gw1.read_tun();
  CHECK(sent_types(s.link.a()) == std::vector<gateway::wire::Type>(4, gateway::wire::Type::packet));
  s.link.deliver();
  CHECK(s.tun2.take_written() == burst);
  // The other way, gw2 still bundles towards gw1, which announced it.
  for (int i = 0; i < 3; ++i)
    s.tun2.inject(base::test_packets::ipv4("10.2.0.2", "10.1.0.2", IPPROTO_UDP, 53, 9, 20));
  s.gw2.read_tun();
  CHECK(sent_types(s.link.b()) == std::vector<gateway::wire::Type>{gateway::wire::Type::bundle});
}

TEST_CASE("gateway: a malformed BUNDLE delivers its good items before the fault and nothing else") {
  TwoSites s;
  s.up();
  auto good = base::test_packets::ipv4("10.2.0.2", "10.1.0.2", IPPROTO_UDP, 53, 9, 10);
  std::vector<std::uint8_t> msg = {static_cast<std::uint8_t>(gateway::wire::Type::bundle)};
  auto add_item = [&](std::uint8_t type, const std::vector<std::uint8_t>& body) {
    std::uint8_t len[2];
    std::size_t n = gateway::wire::write_bundle_length(len, body.size() + 1);
    msg.insert(msg.end(), len, len + n);
    msg.push_back(type);
    msg.insert(msg.end(), body.begin(), body.end());
  };
  add_item(static_cast<std::uint8_t>(gateway::wire::Type::packet), good);
  add_item(static_cast<std::uint8_t>(gateway::wire::Type::hello),
           good);  // not allowed inside a bundle
  add_item(static_cast<std::uint8_t>(gateway::wire::Type::packet), {1, 2, 3});  // not an IP packet
  add_item(static_cast<std::uint8_t>(gateway::wire::Type::packet), good);
  msg.push_back(0x50);  // a length past the end
  tun::PacketBuf buf;
  buf.assign(msg);
  s.gw1.on_message(s.gw1.assocs().begin()->first, 1, buf);
  CHECK(s.tun1.take_written() == Packets{good, good});
  CHECK(s.gw1.counters().dropped(gateway::Drop::wire_malformed) == 2);
  CHECK(s.gw1.counters().dropped(gateway::Drop::inner_malformed) == 1);
}
