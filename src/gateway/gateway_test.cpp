// The whole pipeline without root: two gateways, each with a FakeTun, joined by a LoopbackLink.

#include "src/gateway/gateway.hpp"

#include <doctest/doctest.h>

#include "src/base/bytes.hpp"
#include "src/base/checksum.hpp"
#include "src/base/test_log.hpp"
#include "src/base/test_packets.hpp"
#include "src/gateway/gateway_test_sites.hpp"
#include "src/gateway/wire.hpp"

using namespace gateway::test_sites;

TEST_CASE("gateway: the handshake makes both sides ready, then packets cross byte-exact") {
  TwoSites s;
  s.up();
  REQUIRE(s.gw1.peers()[0].ready_assocs.size() == 1);
  REQUIRE(s.gw2.peers()[0].ready_assocs.size() == 1);

  auto v4 = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_TCP, 40000, 80, 1000);
  auto v6 = base::test_packets::ipv6("fd01::2", "fd02::2", IPPROTO_UDP, 5000, 53, 300);
  s.tun1.inject(v4);
  s.tun1.inject(v6);
  s.gw1.read_tun();
  s.link.deliver();
  auto written = s.tun2.take_written();
  REQUIRE(written.size() == 2);
  CHECK(written[0] == v4);
  CHECK(written[1] == v6);
  CHECK(s.gw1.counters().tunneled_packets == 2);
  CHECK(s.gw2.counters().received_packets == 2);
  CHECK(s.gw1.flow_table().size() == 2);

  // And back.
  auto reply = base::test_packets::ipv4("10.2.0.2", "10.1.0.2", IPPROTO_TCP, 80, 40000, 10);
  s.tun2.inject(reply);
  s.gw2.read_tun();
  s.link.deliver();
  auto back = s.tun1.take_written();
  REQUIRE(back.size() == 1);
  CHECK(back[0] == reply);
}

TEST_CASE("gateway: a flow stays on one data stream; different flows spread over streams") {
  TwoSites s;
  s.up();
  for (int round = 0; round < 3; ++round) {
    for (std::uint16_t port = 1; port <= 5; ++port)
      s.tun1.inject(base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_TCP, port, 80));
  }
  s.gw1.read_tun();
  auto& log = s.link.a().sent_log;
  std::vector<std::uint16_t> streams;
  for (auto& [stream, bytes] : log) {
    if (bytes[0] == static_cast<std::uint8_t>(gateway::wire::Type::packet))
      streams.push_back(stream);
  }
  REQUIRE(streams.size() == 15);
  for (int i = 0; i < 5; ++i) {
    CHECK(streams[i] != gateway::wire::kControlStream);
    CHECK(streams[i] == streams[i + 5]);
    CHECK(streams[i] == streams[i + 10]);
  }
  CHECK(streams[0] != streams[1]);
}

TEST_CASE("gateway: drops are counted by reason and nothing malformed crosses") {
  TwoSites s;
  // No association yet: the tunnel rule matches but the peer is down.
  s.tun1.inject(base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_UDP, 1, 2));
  s.gw1.read_tun();
  CHECK(s.gw1.counters().dropped(gateway::Drop::peer_down) == 1);

  s.up();
  s.tun1.inject(base::test_packets::ipv4("10.1.0.2", "192.168.7.7", IPPROTO_UDP, 1, 2));  // no rule
  std::vector<std::uint8_t> garbage = {0x45, 0, 0};
  s.tun1.inject(garbage);
  s.gw1.read_tun();
  CHECK(s.gw1.counters().dropped(gateway::Drop::no_rule) == 1);
  CHECK(s.gw1.counters().dropped(gateway::Drop::tun_malformed) == 1);

  // From the peer: an unknown message type, and a PACKET carrying a broken IP packet.
  auto id = s.gw2.peers()[0].ready_assocs[0];
  std::vector<std::uint8_t> unknown = {0x7e, 1, 2, 3};
  REQUIRE(s.link.b().send(id, 1, unknown) == transport::SendResult::ok);
  auto broken = base::test_packets::ipv4("10.2.0.2", "10.1.0.2", IPPROTO_UDP, 1, 2);
  broken[3] = static_cast<std::uint8_t>(broken[3] + 1);  // total length one more than the bytes
  broken.insert(broken.begin(), static_cast<std::uint8_t>(gateway::wire::Type::packet));
  REQUIRE(s.link.b().send(id, 1, broken) == transport::SendResult::ok);
  s.link.deliver();
  CHECK(s.gw1.counters().dropped(gateway::Drop::wire_malformed) == 1);
  CHECK(s.gw1.counters().dropped(gateway::Drop::inner_malformed) == 1);
  // The TUN got only our ICMP error for the no_rule drop, none of the malformed packets.
  auto written = s.tun1.take_written();
  REQUIRE(written.size() == 1);
  base::packet::PacketView view;
  REQUIRE(base::packet::parse(written[0], view) == base::packet::ParseError::none);
  CHECK(view.protocol == IPPROTO_ICMP);
}

TEST_CASE("gateway: a PACKET before the peer's HELLO is dropped, a bad HELLO aborts") {
  TwoSites s;
  s.link.up(16, 16);  // HELLOs queued but not delivered
  auto id = s.gw2.assocs().begin()->first;
  auto pkt = base::test_packets::ipv4("10.2.0.2", "10.1.0.2", IPPROTO_UDP, 1, 2);
  pkt.insert(pkt.begin(), static_cast<std::uint8_t>(gateway::wire::Type::packet));
  // Deliver gw2's raw packet ahead of its HELLO by sending it from a fresh link state.
  s.link.a().sent_log.clear();
  gateway::Gateway& gw1 = s.gw1;
  tun::PacketBuf buf;
  buf.assign(pkt);
  gw1.on_message(gw1.assocs().begin()->first, 1, buf);
  CHECK(gw1.counters().dropped(gateway::Drop::before_handshake) == 1);

  gateway::wire::Hello future;
  future.version = 99;
  auto bytes = gateway::wire::encode_hello(future);
  buf.assign(bytes);
  gw1.on_message(gw1.assocs().begin()->first, 0, buf);
  CHECK(s.link.a().aborts == 1);
  CHECK(gw1.peers()[0].ready_assocs.empty());
  (void)id;
}

TEST_CASE("gateway: a full send buffer pauses TUN reading and loses nothing") {
  TwoSites s;
  s.up();
  s.link.a().capacity = 3;
  std::vector<std::vector<std::uint8_t>> sent;
  for (std::uint16_t i = 0; i < 20; ++i) {
    sent.push_back(base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_UDP, 7, i, 100 + i));
    s.tun1.inject(sent.back());
  }
  s.gw1.read_tun();
  CHECK(s.gw1.tun_paused());
  CHECK(s.gw1.counters().backpressure_pauses >= 1);
  CHECK(s.tun1.pending() > 0);  // the rest waits in the TUN, not in a drop counter
  for (int i = 0; i < 50 && (s.gw1.tun_paused() || s.tun1.pending()); ++i) {
    s.link.deliver();  // frees room: on_writable resumes reading
    s.gw1.read_tun();
  }
  s.link.deliver();
  CHECK(s.tun2.take_written() == sent);
  CHECK(s.gw1.counters().dropped_total() == 0);
}

TEST_CASE("gateway: flows of a lost association move to the next one") {
  TwoSites s;
  s.up();
  auto pkt = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_TCP, 1234, 80);
  s.tun1.inject(pkt);
  s.gw1.read_tun();
  s.link.deliver();
  CHECK(s.tun2.take_written().size() == 1);

  s.link.down();
  CHECK(s.gw1.peers()[0].ready_assocs.empty());
  s.tun1.inject(pkt);
  s.gw1.read_tun();
  CHECK(s.gw1.counters().dropped(gateway::Drop::peer_down) == 1);

  s.up();
  s.tun1.inject(pkt);
  s.gw1.read_tun();
  s.link.deliver();
  CHECK(s.tun2.take_written() == std::vector<std::vector<std::uint8_t>>{pkt});
  CHECK(s.gw1.flow_table().size() == 1);
}

TEST_CASE("gateway: a peer cycling associations gets at most 8 lines about them per 10 s") {
  TwoSites s;
  base::test::LogCapture capture;
  for (int i = 0; i < 100; ++i) {  // the loop's time stands still: all within one interval
    s.up();
    REQUIRE(s.gw1.peers()[0].ready_assocs.size() == 1);
    s.link.down();
  }
  CHECK(s.gw1.peers()[0].assoc_unlogged == 92);
  // Both gateways call their peer "other": 8 lines each.
  CHECK(capture.count("peer other: association") == 16);
  CHECK(capture.count("ready (peer instance 00000002") == 8);
}

TEST_CASE("gateway: bypass hands the packet to the host; drop answers with admin-prohibited") {
  base::EventLoop loop;
  tun::FakeTun tun("tun0");
  transport::LoopbackLink link;
  FakeBypass bypass;
  policy::Rule bypass_rule = tunnel_rule("198.51.100.0/24");
  bypass_rule.action = policy::Action::bypass;
  policy::Rule drop_rule = tunnel_rule("10.3.0.0/16");
  drop_rule.action = policy::Action::drop;
  gateway::Gateway gw(
      loop, tun, link.a(), &bypass,
      policy::Policy({tunnel_rule("10.2.0.0/16"), bypass_rule, drop_rule}, policy::Action::drop),
      TwoSites::options(1));

  auto out = base::test_packets::ipv4("10.1.0.2", "198.51.100.7", IPPROTO_TCP, 40000, 443, 200);
  tun.inject(out);
  gw.read_tun();
  REQUIRE(bypass.sent.size() == 1);
  CHECK(bypass.sent[0] == out);
  CHECK(gw.counters().bypassed_packets == 1);
  CHECK(link.a().sent_log.empty());

  bypass.routable = false;
  tun.inject(out);
  gw.read_tun();
  CHECK(gw.counters().dropped(gateway::Drop::bypass_failed) == 1);

  auto denied = base::test_packets::ipv4("10.1.0.2", "10.3.0.5", IPPROTO_UDP, 5000, 53, 40);
  tun.inject(denied);
  gw.read_tun();
  CHECK(gw.counters().dropped(gateway::Drop::policy_drop) == 1);
  auto replies = tun.take_written();
  REQUIRE(replies.size() == 1);
  base::packet::PacketView icmp;
  REQUIRE(base::packet::parse(replies[0], icmp) == base::packet::ParseError::none);
  CHECK(icmp.protocol == IPPROTO_ICMP);
  CHECK(base::packet::address_to_string(4, icmp.dst.data()) == "10.1.0.2");
  CHECK(base::packet::address_to_string(4, icmp.src.data()) == "10.3.0.5");
  CHECK(replies[0][20] == 3);   // destination unreachable
  CHECK(replies[0][21] == 13);  // communication administratively prohibited
  CHECK(gw.counters().icmp_unreachable_sent == 1);

  // No rule and default drop: the same answer, counted as no_rule.
  tun.inject(base::test_packets::ipv6("fd01::2", "fd09::9", IPPROTO_TCP, 1, 2));
  gw.read_tun();
  CHECK(gw.counters().dropped(gateway::Drop::no_rule) == 1);
  replies = tun.take_written();
  REQUIRE(replies.size() == 1);
  CHECK(replies[0][6] == IPPROTO_ICMPV6);
  CHECK(replies[0][40] == 1);  // destination unreachable
  CHECK(replies[0][41] == 1);  // administratively prohibited

  // Rate limit: a flood of denied packets gets a bounded number of answers.
  for (int i = 0; i < 100; ++i) tun.inject(denied);
  for (int i = 0; i < 20; ++i) gw.read_tun();
  CHECK(tun.take_written().size() <= 20);
}

TEST_CASE("gateway: a policy change moves a flow between peers and keeps unaffected flows") {
  TwoSites s;
  s.up();
  auto a = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_TCP, 1000, 80);
  s.tun1.inject(a);
  s.gw1.read_tun();
  s.link.deliver();
  CHECK(s.tun2.take_written().size() == 1);
  auto stream_before = s.link.a().sent_log.back().first;

  policy::Rule bypass_rule = tunnel_rule("10.2.9.0/24");
  bypass_rule.action = policy::Action::bypass;
  s.gw1.set_policy(policy::Policy({tunnel_rule("10.2.0.0/16"), bypass_rule}, policy::Action::drop));
  s.tun1.inject(a);
  s.tun1.inject(base::test_packets::ipv4("10.1.0.2", "10.2.9.9", IPPROTO_TCP, 1000, 80));
  s.gw1.read_tun();
  s.link.deliver();
  CHECK(s.tun2.take_written().size() == 1);
  CHECK(s.link.a().sent_log.back().first == stream_before);  // same flow, same stream
  CHECK(s.bypass1.sent.size() == 1);
}

TEST_CASE(
    "gateway: a redundant rule's packets are sent redundant, bundled or not, reload applies") {
  TwoSites s;
  s.up();
  policy::Rule icmp = tunnel_rule("10.2.0.0/16");
  icmp.protocol = IPPROTO_ICMP;
  icmp.redundant = true;
  s.gw1.set_policy(policy::Policy({icmp, tunnel_rule("10.2.0.0/16")}, policy::Action::drop));
  auto& log = s.link.a().sent_log;
  auto& redundant = s.link.a().sent_redundant;
  auto send = [&](const std::vector<std::vector<std::uint8_t>>& packets) {
    std::size_t first = log.size();
    for (const auto& p : packets) s.tun1.inject(p);
    s.gw1.read_tun();
    s.link.deliver();
    CHECK(s.tun2.take_written() == packets);  // each once, byte-exact
    std::vector<bool> out(redundant.begin() + static_cast<std::ptrdiff_t>(first), redundant.end());
    return out;
  };
  auto ping = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_ICMP, 0, 0, 1000);
  auto small_ping = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_ICMP, 0, 0, 20);
  auto tcp = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_TCP, 40000, 80, 1000);
  CHECK(send({ping}) == std::vector<bool>{true});
  CHECK(send({tcp}) == std::vector<bool>{false});
  // Two small packets of the flow travel as one bundle, sent redundant.
  CHECK(send({small_ping, small_ping}) == std::vector<bool>{true});
  CHECK(s.gw1.counters().redundant_packets == 3);
  // The rule loses redundant: the same flow's next packet goes once.
  icmp.redundant = false;
  s.gw1.set_policy(policy::Policy({icmp, tunnel_rule("10.2.0.0/16")}, policy::Action::drop));
  CHECK(send({ping}) == std::vector<bool>{false});
  CHECK(s.gw1.counters().redundant_packets == 3);
}

namespace {
// A TCPv4 GSO super-packet as a TUN with offloads hands it over: virtio-net header, then one
// IP+TCP header and `payload` bytes, checksum left partial (pseudo-header sum only).
std::vector<std::uint8_t> gso_super_packet(std::size_t payload, std::uint16_t mss) {
  auto ip = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_TCP, 40000, 5001, payload);
  ip[6] = 0x40;  // DF
  base::store_be16(&ip[36],
                   base::checksum::add(std::span(ip).subspan(12, 8),
                                       IPPROTO_TCP + static_cast<std::uint32_t>(ip.size() - 20)));
  tun::VnetHdr hdr;
  hdr.flags = tun::VnetHdr::kNeedsCsum;
  hdr.gso_type = tun::VnetHdr::kGsoTcpV4;
  hdr.hdr_len = 40;
  hdr.gso_size = mss;
  hdr.csum_start = 20;
  hdr.csum_offset = 16;
  std::vector<std::uint8_t> out(tun::kVnetHdrSize);
  hdr.store(out);
  out.insert(out.end(), ip.begin(), ip.end());
  return out;
}
}  // namespace

TEST_CASE("gateway: a GSO super-packet travels as one PACKET_GSO message, whole or segmented") {
  TwoSites s;
  s.tun1.set_vnet_hdr(true);
  s.up();
  auto super = gso_super_packet(5000, 1400);

  SUBCASE("the far TUN has offloads: written as it was read") {
    s.tun2.set_vnet_hdr(true);
    s.tun1.inject(super);
    s.gw1.read_tun();
    REQUIRE(s.link.a().sent_log.size() >= 1);
    const auto& msg = s.link.a().sent_log.back().second;
    CHECK(msg[0] == static_cast<std::uint8_t>(gateway::wire::Type::packet_gso));
    CHECK(msg.size() == 1 + super.size());
    s.link.deliver();
    CHECK(s.tun2.take_written() == std::vector<std::vector<std::uint8_t>>{super});
  }
  SUBCASE("the far TUN has no offloads: segmented in software, checksums complete") {
    s.tun1.inject(super);
    s.gw1.read_tun();
    s.link.deliver();
    auto segments = s.tun2.take_written();
    REQUIRE(segments.size() == 4);  // 1400 + 1400 + 1400 + 800
    std::size_t payload = 0;
    for (const auto& seg : segments) {
      base::packet::PacketView view;
      REQUIRE(base::packet::parse(seg, view) == base::packet::ParseError::none);
      CHECK(view.total_len == seg.size());
      payload += seg.size() - 40;
    }
    CHECK(payload == 5000);
  }
  SUBCASE("plain packets from a vnet TUN travel as PACKET; the vnet TUN gets a zero header") {
    s.tun2.set_vnet_hdr(true);
    auto ping = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_ICMP, 0, 0, 56);
    std::vector<std::uint8_t> framed(tun::kVnetHdrSize, 0);
    framed.insert(framed.end(), ping.begin(), ping.end());
    s.tun1.inject(framed);
    s.gw1.read_tun();
    CHECK(s.link.a().sent_log.back().second.size() == 1 + ping.size());
    s.link.deliver();
    CHECK(s.tun2.take_written() == std::vector<std::vector<std::uint8_t>>{framed});
  }
}

TEST_CASE("gateway: an inconsistent PACKET_GSO from a peer never reaches the TUN") {
  TwoSites s;
  s.tun2.set_vnet_hdr(true);
  s.up();
  auto super = gso_super_packet(3000, 1400);
  auto id = s.gw1.peers()[0].ready_assocs[0];
  auto send = [&](std::vector<std::uint8_t> body) {
    body.insert(body.begin(), static_cast<std::uint8_t>(gateway::wire::Type::packet_gso));
    REQUIRE(s.link.a().send(id, 1, body) == transport::SendResult::ok);
    s.link.deliver();
  };
  auto v6_type = super;
  v6_type[1] = tun::VnetHdr::kGsoTcpV6;  // says IPv6, carries IPv4
  send(v6_type);
  auto bad_csum = super;
  bad_csum[6] = 0xff;  // csum_start far beyond the packet
  bad_csum[7] = 0xff;
  send(bad_csum);
  send(std::vector<std::uint8_t>(super.begin(), super.begin() + 6));  // truncated header
  CHECK(s.tun2.take_written().empty());
  CHECK(s.gw2.counters().dropped(gateway::Drop::inner_malformed) == 2);
  CHECK(s.gw2.counters().dropped(gateway::Drop::wire_malformed) == 1);
}

TEST_CASE("gateway: a PACKET_GSO header that a kernel would not make never reaches the TUN") {
  TwoSites s;
  s.tun2.set_vnet_hdr(true);
  s.up();
  auto id = s.gw1.peers()[0].ready_assocs[0];
  // Sends hdr and packet as PACKET_GSO to gw2. True when gw2 wrote them into its TUN as they
  // came; false when it dropped them as inner_malformed and wrote nothing.
  auto passes = [&](const tun::VnetHdr& hdr, const std::vector<std::uint8_t>& packet) {
    std::vector<std::uint8_t> framed(tun::kVnetHdrSize);
    hdr.store(framed);
    framed.insert(framed.end(), packet.begin(), packet.end());
    std::vector<std::uint8_t> body = framed;
    body.insert(body.begin(), static_cast<std::uint8_t>(gateway::wire::Type::packet_gso));
    const std::uint64_t before = s.gw2.counters().dropped(gateway::Drop::inner_malformed);
    REQUIRE(s.link.a().send(id, 1, body) == transport::SendResult::ok);
    s.link.deliver();
    const auto written = s.tun2.take_written();
    const std::uint64_t dropped = s.gw2.counters().dropped(gateway::Drop::inner_malformed) - before;
    if (written.empty()) {
      CHECK(dropped == 1);
      return false;
    }
    CHECK(dropped == 0);
    CHECK(written == std::vector<std::vector<std::uint8_t>>{framed});
    return true;
  };
  const auto super = gso_super_packet(3000, 1400);
  const tun::VnetHdr gso = *tun::VnetHdr::load(super);
  const std::vector<std::uint8_t> tcp(super.begin() + tun::kVnetHdrSize, super.end());
  auto with = [](tun::VnetHdr h, auto change) {
    change(h);
    return h;
  };
  REQUIRE(passes(gso, tcp));

  SUBCASE("rule 1: GSO comes with a partial checksum") {
    CHECK_FALSE(passes(with(gso, [](auto& h) { h.flags = 0; }), tcp));
    CHECK_FALSE(passes(with(gso, [](auto& h) { h.flags = tun::VnetHdr::kDataValid; }), tcp));
  }
  SUBCASE("rule 2: the checksum field is the L4 header's TCP or UDP checksum") {
    CHECK_FALSE(passes(with(gso, [](auto& h) { h.csum_start = 22; }), tcp));
    CHECK_FALSE(passes(with(gso, [](auto& h) { h.csum_start = 0, h.csum_offset = 36; }), tcp));
    CHECK_FALSE(passes(with(gso, [](auto& h) { h.csum_offset = 6; }), tcp));
    tun::VnetHdr csum;  // no GSO, only the checksum left to the kernel
    csum.flags = tun::VnetHdr::kNeedsCsum;
    csum.csum_start = 20;
    csum.csum_offset = 16;
    CHECK(passes(csum, tcp));
    CHECK_FALSE(passes(with(csum, [](auto& h) { h.csum_start = 24; }), tcp));
    CHECK_FALSE(passes(with(csum, [](auto& h) { h.csum_offset = 18; }), tcp));
    const auto udp = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_UDP, 53, 53, 100);
    CHECK(passes(with(csum, [](auto& h) { h.csum_offset = 6; }), udp));
    CHECK_FALSE(passes(csum, udp));  // TCP's offset in a UDP packet
    auto v6 = base::test_packets::ipv6("fd01::2", "fd02::2", IPPROTO_UDP, 53, 53, 100);
    CHECK(passes(with(csum, [](auto& h) { h.csum_start = 40, h.csum_offset = 6; }), v6));
    CHECK_FALSE(passes(with(csum, [](auto& h) { h.csum_offset = 6; }), v6));  // the v4 offset
    const auto icmp = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_ICMP, 0, 0, 100);
    CHECK_FALSE(passes(with(csum, [](auto& h) { h.csum_offset = 2; }), icmp));
    auto fragment = udp;
    fragment[6] = 0x20;  // MF
    CHECK_FALSE(passes(with(csum, [](auto& h) { h.csum_offset = 6; }), fragment));
  }
  SUBCASE("rule 3: hdr_len covers the IP and TCP headers and stays inside the packet") {
    CHECK_FALSE(passes(with(gso, [](auto& h) { h.hdr_len = 0; }), tcp));
    CHECK_FALSE(passes(with(gso, [](auto& h) { h.hdr_len = 39; }), tcp));
    const auto size = static_cast<std::uint16_t>(tcp.size());
    CHECK_FALSE(passes(with(gso, [&](auto& h) { h.hdr_len = size + 1; }), tcp));
    CHECK(passes(with(gso, [&](auto& h) { h.hdr_len = size; }), tcp));  // the whole linear part
    CHECK(passes(with(gso, [](auto& h) { h.hdr_len = 1440; }), tcp));
  }
  SUBCASE("rule 4: no flag bits but kNeedsCsum or kDataValid, and not both") {
    CHECK_FALSE(passes(with(gso, [](auto& h) { h.flags |= 4; }), tcp));
    CHECK_FALSE(passes(with(gso, [](auto& h) { h.flags |= 0x80; }), tcp));
    CHECK_FALSE(passes(with(gso, [](auto& h) { h.flags |= tun::VnetHdr::kDataValid; }), tcp));
    CHECK_FALSE(passes(with(tun::VnetHdr{}, [](auto& h) { h.flags = 4; }), tcp));
    CHECK(passes(with(tun::VnetHdr{}, [](auto& h) { h.flags = tun::VnetHdr::kDataValid; }), tcp));
    CHECK(passes(tun::VnetHdr{}, tcp));
  }
  SUBCASE("rule 5: gso_size of at least 64, so at most 1024 segments; ECN only with TCP GSO") {
    CHECK_FALSE(passes(with(gso, [](auto& h) { h.gso_size = 1; }), tcp));  // 3000 segments
    CHECK_FALSE(passes(with(gso, [](auto& h) { h.gso_size = 63; }), tcp));
    CHECK(passes(with(gso, [](auto& h) { h.gso_size = 64; }), tcp));
    const auto largest = gso_super_packet(65535 - 40, 64);  // 1024 segments, the most
    const std::vector<std::uint8_t> largest_tcp(largest.begin() + tun::kVnetHdrSize, largest.end());
    CHECK(passes(*tun::VnetHdr::load(largest), largest_tcp));
    CHECK(passes(with(gso, [](auto& h) { h.gso_type |= tun::VnetHdr::kGsoEcn; }), tcp));
    CHECK_FALSE(
        passes(with(tun::VnetHdr{}, [](auto& h) { h.gso_type = tun::VnetHdr::kGsoEcn; }), tcp));
    tun::VnetHdr csum_ecn = gso;  // no GSO, checksum partial, ECN
    csum_ecn.gso_type = tun::VnetHdr::kGsoEcn;
    csum_ecn.gso_size = 0;
    CHECK_FALSE(passes(csum_ecn, tcp));
    CHECK_FALSE(passes(with(gso, [](auto& h) { h.gso_type = tun::VnetHdr::kGsoUdpL4; }), tcp));
  }
  SUBCASE("a TCPv6 super-packet passes; with the IPv4 type or no TCP data offset it does not") {
    auto v6 = base::test_packets::ipv6("fd01::2", "fd02::2", IPPROTO_TCP, 40000, 5001, 3000);
    v6[52] = 0x50;  // data offset 5
    tun::VnetHdr h6 = gso;
    h6.gso_type = tun::VnetHdr::kGsoTcpV6;
    h6.hdr_len = 60;
    h6.csum_start = 40;
    CHECK(passes(h6, v6));
    CHECK_FALSE(passes(with(h6, [](auto& h) { h.gso_type = tun::VnetHdr::kGsoTcpV4; }), v6));
    v6[52] = 0x40;  // 16 bytes: shorter than a TCP header
    CHECK_FALSE(passes(h6, v6));
  }
}

namespace {
// The sum of the IPv4 pseudo-header of p, an IPv4 packet whose L4 header starts at l4 (within
// p) and ends at p's end.
std::uint32_t pseudo4(std::span<const std::uint8_t> p, std::size_t ip, std::size_t l4,
                      std::uint8_t proto) {
  return base::checksum::add(p.subspan(ip + 12, 8)) + proto +
         static_cast<std::uint32_t>(p.size() - l4);
}
bool ipv4_header_ok(std::span<const std::uint8_t> p, std::size_t at = 0) {
  return base::checksum::add(p.subspan(at, 20)) == 0xffff;
}
bool l4_ok(std::span<const std::uint8_t> p, std::size_t ip, std::size_t l4, std::uint8_t proto) {
  return base::checksum::add(p.subspan(l4), pseudo4(p, ip, l4, proto)) == 0xffff;
}
void check_completed_locally(bool compress, bool bundle, std::size_t capacity);
}  // namespace

TEST_CASE(
    "gateway: what our kernel hands out but a peer would refuse is completed before it goes") {
  for (const bool compress : {false, true})
    for (const bool bundle : {true, false})
      for (const std::size_t capacity : {std::size_t{1024}, std::size_t{2}}) {
        CAPTURE(compress);
        CAPTURE(bundle);
        CAPTURE(capacity);
        check_completed_locally(compress, bundle, capacity);
      }
}

namespace {
void check_completed_locally(bool compress, bool bundle, std::size_t capacity) {
  TwoSites s(compress, bundle);  // gw2 (plain TUN) accepts bundles or not; gw1 follows its HELLO
  s.tun1.set_vnet_hdr(true);
  s.up();
  s.link.a().capacity = capacity;  // 2: the transport blocks in the middle of a super-packet
  auto pass = [&](const tun::VnetHdr& hdr, const std::vector<std::uint8_t>& packet) {
    std::vector<std::uint8_t> framed(tun::kVnetHdrSize);
    hdr.store(framed);
    framed.insert(framed.end(), packet.begin(), packet.end());
    s.tun1.inject(framed);
    s.gw1.read_tun();
    for (int i = 0; i < 1000 && (s.gw1.tun_paused() || s.tun1.pending()); ++i) {
      s.link.deliver();  // frees room: on_writable resumes
      s.gw1.read_tun();
    }
    s.link.deliver();
    return s.tun2.take_written();
  };

  // (1) An IPv4/UDP packet carrying an IPv4/UDP packet (FOU-like encapsulation): the kernel left
  // the inner UDP checksum partial (csum_start 48, the inner UDP header) and filled in the outer
  // one as if the inner were complete (local checksum offload).
  auto inner = base::test_packets::ipv4("10.9.0.1", "10.9.0.2", IPPROTO_UDP, 5353, 9999, 301);
  base::store_be16(&inner[24], static_cast<std::uint16_t>(inner.size() - 20));
  base::store_be16(&inner[10], base::checksum::internet(std::span(inner).first(20)));
  base::store_be16(&inner[26], base::checksum::internet(std::span(inner).subspan(20),
                                                        pseudo4(inner, 0, 20, IPPROTO_UDP)));
  auto outer = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_UDP, 40001, 5555, 0);
  outer.insert(outer.end(), inner.begin(), inner.end());
  base::store_be16(&outer[2], static_cast<std::uint16_t>(outer.size()));
  base::store_be16(&outer[24], static_cast<std::uint16_t>(outer.size() - 20));
  base::store_be16(&outer[10], base::checksum::internet(std::span(outer).first(20)));
  base::store_be16(&outer[26], base::checksum::internet(std::span(outer).subspan(20),
                                                        pseudo4(outer, 0, 20, IPPROTO_UDP)));
  const std::vector<std::uint8_t> finished = outer;
  REQUIRE(l4_ok(finished, 28, 48, IPPROTO_UDP));
  REQUIRE(l4_ok(finished, 0, 20, IPPROTO_UDP));
  auto partial = finished;  // as the kernel hands it out: the inner field holds the pseudo sum
  base::store_be16(&partial[54], base::checksum::add({}, pseudo4(partial, 28, 48, IPPROTO_UDP)));
  tun::VnetHdr csum;
  csum.flags = tun::VnetHdr::kNeedsCsum;
  csum.csum_start = 48;
  csum.csum_offset = 6;
  CHECK(pass(csum, partial) == std::vector<std::vector<std::uint8_t>>{finished});

  // (2) A TCP super-packet with gso_size 48 (a TCP MSS Linux allows): 63 segments, more than two
  // bundles hold, so that a capacity of 2 blocks in the middle of them.
  const std::size_t payload = 3000, mss = 48;
  auto super = gso_super_packet(payload, mss);
  super[tun::kVnetHdrSize + 33] = 0x18;                           // PSH ACK
  base::store_be32(&super[tun::kVnetHdrSize + 24], 0xfffffff0u);  // wraps during segmentation
  base::store_be16(&super[tun::kVnetHdrSize + 4], 0xfffe);        // so does the IP ID
  const tun::VnetHdr gso = *tun::VnetHdr::load(super);
  const std::vector<std::uint8_t> tcp(super.begin() + tun::kVnetHdrSize, super.end());
  std::vector<std::vector<std::uint8_t>> want;
  for (std::size_t done = 0; done < payload; done += mss) {
    const std::size_t chunk = std::min(mss, payload - done);
    std::vector<std::uint8_t> seg(tcp.begin(), tcp.begin() + 40);
    seg.insert(seg.end(), tcp.begin() + static_cast<std::ptrdiff_t>(40 + done),
               tcp.begin() + static_cast<std::ptrdiff_t>(40 + done + chunk));
    base::store_be16(&seg[2], static_cast<std::uint16_t>(seg.size()));
    base::store_be16(&seg[4], static_cast<std::uint16_t>(0xfffe + want.size()));
    base::store_be16(&seg[10], 0);
    base::store_be16(&seg[10], base::checksum::internet(std::span(seg).first(20)));
    base::store_be32(&seg[24], static_cast<std::uint32_t>(0xfffffff0u + done));
    if (done + chunk < payload) seg[33] = 0x10;  // PSH on the last segment only
    base::store_be16(&seg[36], 0);
    base::store_be16(&seg[36], base::checksum::internet(std::span(seg).subspan(20),
                                                        pseudo4(seg, 0, 20, IPPROTO_TCP)));
    want.push_back(seg);
  }
  REQUIRE(want.size() == 63);
  const auto got = pass(gso, tcp);
  CHECK(got == want);
  for (const auto& seg : got) {
    CHECK(ipv4_header_ok(seg));
    CHECK(l4_ok(seg, 0, 20, IPPROTO_TCP));
  }

  CHECK(s.gw1.counters().vnet_completed_locally == 2);
  if (capacity == 2) CHECK(s.gw1.counters().backpressure_pauses > 0);  // blocked midway
  CHECK(s.gw1.counters().dropped_total() == 0);
  CHECK(s.gw2.counters().dropped_total() == 0);
  // Nothing the peer would refuse went out: no PACKET_GSO at all.
  for (const auto& [stream, msg] : s.link.a().sent_log) {
    CHECK(msg[0] != static_cast<std::uint8_t>(gateway::wire::Type::packet_gso));
    CHECK(msg[0] != static_cast<std::uint8_t>(gateway::wire::Type::packet_gso_hc));
  }
}
}  // namespace

TEST_CASE("gateway: compressed headers rebuild byte-exact packets and shrink the headers") {
  TwoSites s(true);
  s.up();
  std::vector<std::vector<std::uint8_t>> sent;
  for (std::uint32_t i = 0; i < 50; ++i) {
    sent.push_back(tcp4_segment(1000 + i * 1000, static_cast<std::uint16_t>(7 + i), 1000));
    s.tun1.inject(sent.back());
  }
  s.gw1.read_tun();
  s.link.deliver();
  CHECK(s.tun2.take_written() == sent);
  const auto& c = s.gw1.counters();
  CHECK(c.hc_tcp4_packets == 50);
  CHECK(c.hc_tcp4_inner_header_bytes == 50 * 40);
  CHECK(c.hc_tcp4_compressed_header_bytes < 50 * 6);  // one full header, then a few bytes each
  CHECK(s.link.a().sent_log.back().second[0] ==
        static_cast<std::uint8_t>(gateway::wire::Type::packet_hc));
}

TEST_CASE("gateway: a broken compressed message resets the stream's contexts on both sides") {
  TwoSites s(true);
  s.up();
  s.tun1.inject(tcp4_segment(1, 1, 100));
  s.gw1.read_tun();
  s.link.deliver();
  REQUIRE(s.tun2.take_written().size() == 1);
  std::uint16_t stream = s.link.a().sent_log.back().first;

  // Garbage where a compressed header should be: dropped, never written, reset requested.
  auto id = s.gw1.peers()[0].ready_assocs[0];
  std::vector<std::uint8_t> junk = {static_cast<std::uint8_t>(gateway::wire::Type::packet_hc), 0x9c,
                                    0xff, 0x01};
  REQUIRE(s.link.a().send(id, stream, junk) == transport::SendResult::ok);
  s.link.deliver();
  CHECK(s.tun2.take_written().empty());
  CHECK(s.gw2.counters().dropped(gateway::Drop::hc_error) == 1);
  CHECK(s.gw2.counters().hc_context_resets_sent == 1);
  CHECK(s.gw1.counters().hc_context_resets_received == 1);

  // The next packets start from full headers and arrive intact.
  auto next = tcp4_segment(101, 2, 100);
  s.tun1.inject(next);
  s.gw1.read_tun();
  s.link.deliver();
  CHECK(s.tun2.take_written() == std::vector<std::vector<std::uint8_t>>{next});
}

TEST_CASE("gateway: compression is used only when both sides offer it") {
  base::EventLoop loop;
  tun::FakeTun tun1("a"), tun2("b");
  transport::LoopbackLink link;
  gateway::Gateway gw1(loop, tun1, link.a(), nullptr,
                       policy::Policy({tunnel_rule("10.2.0.0/16")}, policy::Action::drop),
                       TwoSites::options(1, true));
  gateway::Gateway gw2(loop, tun2, link.b(), nullptr,
                       policy::Policy({tunnel_rule("10.1.0.0/16")}, policy::Action::drop),
                       TwoSites::options(2, false));
  link.up(16, 16);
  link.deliver();
  auto pkt = tcp4_segment(5, 5, 64);
  tun1.inject(pkt);
  gw1.read_tun();
  CHECK(link.a().sent_log.back().second[0] ==
        static_cast<std::uint8_t>(gateway::wire::Type::packet));
  link.deliver();
  CHECK(tun2.take_written() == std::vector<std::vector<std::uint8_t>>{pkt});
}

TEST_CASE("gateway: a peer's packets from sources outside its allowed set never reach the TUN") {
  // gw1 tunnels 10.2.0.0/16 and fd02::/64 to the peer, so those are the sources it accepts from
  // it. A host behind gw2 forges sources: one of site 1's own LAN, one of gw1's other uplink, an
  // unrelated one. gw2's policy looks at destinations only and tunnels them all.
  for (bool compress : {false, true}) {
    CAPTURE(compress);
    TwoSites s(compress);
    s.up();
    const std::vector<std::uint8_t> legit4 =
        base::test_packets::ipv4("10.2.0.2", "10.1.0.2", IPPROTO_UDP, 5000, 53);
    const std::vector<std::uint8_t> legit6 =
        base::test_packets::ipv6("fd02::2", "fd01::2", IPPROTO_UDP, 5000, 53);
    const std::vector<std::vector<std::uint8_t>> forged = {
        base::test_packets::ipv4("10.1.0.99", "10.1.0.2", IPPROTO_UDP, 5000, 53),   // site 1's LAN
        base::test_packets::ipv4("198.18.0.1", "10.1.0.2", IPPROTO_UDP, 5000, 53),  // gw1's uplink
        base::test_packets::ipv4("192.168.50.1", "10.1.0.2", IPPROTO_UDP, 5000, 53),  // unrelated
        base::test_packets::ipv6("fd01::99", "fd01::2", IPPROTO_UDP, 5000, 53),
        base::test_packets::ipv6("2001:db8:77::1", "fd01::2", IPPROTO_UDP, 5000, 53),
        // Just outside the peer's prefixes: 10.3.0.0 and fd02:0:0:1::.
        base::test_packets::ipv4("10.3.0.1", "10.1.0.2", IPPROTO_TCP, 5000, 80, 1000),
        base::test_packets::ipv6("fd02:0:0:1::2", "fd01::2", IPPROTO_TCP, 5000, 80, 1000),
    };
    s.tun2.inject(forged[0]);
    s.tun2.inject(legit4);
    for (std::size_t i = 1; i < forged.size(); ++i) s.tun2.inject(forged[i]);
    s.tun2.inject(legit6);
    s.gw2.read_tun();
    s.link.deliver();
    CHECK(s.gw2.counters().tunneled_packets == forged.size() + 2);
    auto written = s.tun1.take_written();
    REQUIRE(written.size() == 2);
    CHECK(written[0] == legit4);
    CHECK(written[1] == legit6);
    CHECK(s.gw1.counters().received_packets == 2);
    CHECK(s.gw1.peers()[0].rx_packets == 2);
    CHECK(s.gw1.counters().dropped(gateway::Drop::source_not_allowed) == forged.size());
    CHECK(s.gw1.counters().dropped_total() == forged.size());
    CHECK(s.gw1.peers()[0].source_not_allowed == forged.size());
    // The way back is not affected: gw2 accepts what gw1 sends from site 1.
    auto reply = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_UDP, 53, 5000);
    s.tun1.inject(reply);
    s.gw1.read_tun();
    s.link.deliver();
    auto back = s.tun2.take_written();
    REQUIRE(back.size() == 1);
    CHECK(back[0] == reply);
    CHECK(s.gw2.counters().dropped(gateway::Drop::source_not_allowed) == 0);
  }
}

namespace {

// An ICMP error from `from` about `quoted` (which went the other way): destination unreachable,
// IPv4 port unreachable (type 3 code 3) / IPv6 administratively prohibited (type 1 code 1).
std::vector<std::uint8_t> icmp_error(const std::vector<std::uint8_t>& quoted, const char* from) {
  base::packet::PacketView view;
  REQUIRE(base::packet::parse(quoted, view) == base::packet::ParseError::none);
  auto source = *policy::Prefix::parse(from);
  std::vector<std::uint8_t> out(1280);
  std::size_t n = gateway::icmp::make_admin_prohibited(view, source.bytes().data(), out);
  REQUIRE(n > 0);
  out.resize(n);
  if (view.version == 4) {
    out[21] = 3;  // port unreachable
    out[22] = out[23] = 0;
    base::store_be16(&out[22], base::checksum::internet(std::span(out).subspan(20)));
  }
  return out;
}

}  // namespace

TEST_CASE("gateway: ICMP errors about packets to the peer's side pass from any source") {
  TwoSites s;
  s.up();
  // gw1's side sent these through the tunnel; their sources are site 1's, not the peer's.
  auto sent4 = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_UDP, 40000, 9);
  auto sent6 = base::test_packets::ipv6("fd01::2", "fd02::2", IPPROTO_UDP, 40000, 9);
  // A packet that did not go to the peer's side (10.3.0.0/16 is no tunnel rule's).
  auto elsewhere4 = base::test_packets::ipv4("10.1.0.2", "10.3.0.5", IPPROTO_UDP, 40000, 9);
  auto elsewhere6 = base::test_packets::ipv6("fd01::2", "fd03::5", IPPROTO_UDP, 40000, 9);
  // An error sent to another host than the one whose packet it quotes.
  auto misdirected = icmp_error(sent4, "10.255.0.2");
  misdirected[19] = 3;  // destination 10.1.0.3
  misdirected[10] = misdirected[11] = 0;
  base::store_be16(&misdirected[10], base::checksum::internet(std::span(misdirected).first(20)));
  const std::vector<std::vector<std::uint8_t>> errors = {
      icmp_error(sent4, "10.2.0.2"),      // the host itself: port unreachable
      icmp_error(sent4, "10.2.0.1"),      // a router of the peer's LAN
      icmp_error(sent6, "fd02::2"),       //
      icmp_error(sent4, "10.255.0.2"),    // the peer gateway, from its TUN address
      icmp_error(sent6, "fd00:255::2"),   //
      icmp_error(sent4, "192.168.50.1"),  // a router further on
  };
  const std::vector<std::vector<std::uint8_t>> forged = {
      icmp_error(elsewhere4, "192.168.50.1"),
      icmp_error(elsewhere6, "2001:db8::1"),
      misdirected,
      // Not an error: an echo reply (type 0) from outside the peer's LAN.
      base::test_packets::ipv4("192.168.50.1", "10.1.0.2", IPPROTO_ICMP, 0, 0, 56),
  };
  for (const auto& e : errors) s.tun2.inject(e);
  for (const auto& e : forged) s.tun2.inject(e);
  s.gw2.read_tun();
  s.link.deliver();
  CHECK(s.gw2.counters().tunneled_packets == errors.size() + forged.size());
  CHECK(s.tun1.take_written() == errors);
  CHECK(s.gw1.counters().dropped(gateway::Drop::source_not_allowed) == forged.size());
}

TEST_CASE(
    "gateway: a policy's extra allowed sources apply at once, and a new policy replaces them") {
  using Packets = std::vector<std::vector<std::uint8_t>>;
  TwoSites s;
  s.up();
  auto from = [](const char* src) {
    return std::string(src).find(':') == std::string::npos
               ? base::test_packets::ipv4(src, "10.1.0.2", IPPROTO_UDP, 5000, 53)
               : base::test_packets::ipv6(src, "fd01::2", IPPROTO_UDP, 5000, 53);
  };
  auto send = [&](std::initializer_list<const char*> sources) {
    for (const char* src : sources) s.tun2.inject(from(src));
    s.gw2.read_tun();
    s.link.deliver();
    return s.tun1.take_written();
  };
  const std::initializer_list<const char*> sources = {"10.9.1.1", "fd00:9::1", "10.255.0.2",
                                                      "10.2.0.7"};
  CHECK(send(sources) == Packets{from("10.2.0.7")});
  CHECK(s.gw1.peers()[0].source_not_allowed == 3);

  // What a reload does: a new policy, here with the peer's allowed_sources.
  std::vector<policy::Rule> rules = {tunnel_rule("10.2.0.0/16"), tunnel_rule("fd02::/64")};
  s.gw1.set_policy(policy::Policy(rules, policy::Action::drop,
                                  {{*policy::Prefix::parse("10.9.0.0/16"), 0},
                                   {*policy::Prefix::parse("fd00:9::/48"), 0},
                                   {*policy::Prefix::parse("10.255.0.2/32"), 0}}));
  CHECK(send(sources) ==
        Packets{from("10.9.1.1"), from("fd00:9::1"), from("10.255.0.2"), from("10.2.0.7")});
  CHECK(s.gw1.peers()[0].source_not_allowed == 3);

  // And away again; a peer no tunnel rule names may send from nowhere.
  s.gw1.set_policy(policy::Policy({}, policy::Action::drop));
  CHECK(send(sources).empty());
  CHECK(s.gw1.peers()[0].source_not_allowed == 7);
  CHECK(s.gw1.counters().dropped(gateway::Drop::source_not_allowed) == 7);
}

namespace {
// A TCP segment from gw1's side (10.1.0.0/16) to 10.2.0.2:80 or back, with the given flags.
std::vector<std::uint8_t> tcp_with_flags(const char* src, const char* dst, std::uint16_t sport,
                                         std::uint16_t dport, std::uint8_t flags) {
  auto p = base::test_packets::ipv4(src, dst, IPPROTO_TCP, sport, dport, 0);
  p[33] = flags;
  return p;
}
constexpr std::uint8_t kSyn = 0x02, kAck = 0x10;

// One TCP handshake from host:port through gw1 to 10.2.0.2:80 and back (SYN, SYN-ACK, ACK):
// the flow is established at gw1. Whether the SYN crossed.
bool open_established(TwoSites& s, const char* host, std::uint16_t port) {
  s.tun1.inject(tcp_with_flags(host, "10.2.0.2", port, 80, kSyn));
  s.gw1.read_tun();
  s.link.deliver();
  if (s.tun2.take_written().size() != 1) return false;
  s.tun2.inject(tcp_with_flags("10.2.0.2", host, 80, port, kSyn | kAck));
  s.gw2.read_tun();
  s.link.deliver();
  s.tun1.take_written();
  s.tun1.inject(tcp_with_flags(host, "10.2.0.2", port, 80, kAck));
  s.gw1.read_tun();
  s.link.deliver();
  return s.tun2.take_written().size() == 1;
}
}  // namespace

TEST_CASE("gateway: one inside host cannot fill the flow table with established flows") {
  gateway::Options o1 = TwoSites::options(1), o2 = TwoSites::options(2);
  o1.max_flows = o2.max_flows = 64;  // per host: 64 / 8 = 8 by default
  TwoSites s(o1, o2);
  s.up();
  // The attacker completes handshakes until it gets no more flows.
  std::uint16_t opened = 0;
  for (std::uint16_t port = 1000; port < 1100; ++port) {
    if (!open_established(s, "10.1.0.66", port)) break;
    ++opened;
  }
  CHECK(opened < 64);
  CHECK(s.gw1.flow_table().size() < 64);
  // Another host still gets its flows.
  for (std::uint16_t port = 2000; port < 2004; ++port) CHECK(open_established(s, "10.1.0.7", port));
  CHECK(s.gw1.counters().dropped(gateway::Drop::flow_limit) == 0);
  CHECK(opened == 8);
  CHECK(s.gw1.counters().dropped(gateway::Drop::host_flow_limit) == 1);
}

TEST_CASE("gateway: a flow moved to another peer releases its association's count and context") {
  gateway::Options o1 = TwoSites::options(1, true), o2 = TwoSites::options(2, true);
  o1.peer_names = {"other", "third"};
  o1.peer_security = {TwoSites::plain(true), TwoSites::plain(true)};
  TwoSites s(o1, o2);
  s.up();
  REQUIRE(s.gw1.assocs().size() == 1);
  const gateway::AssocState& state = s.gw1.assocs().begin()->second;
  for (std::uint16_t port = 1; port <= 3; ++port) {
    s.tun1.inject(tcp4_segment(1, port, 100, 0, port));
    s.gw1.read_tun();
  }
  s.link.deliver();
  REQUIRE(s.tun2.take_written().size() == 3);
  REQUIRE(state.bound_flows == 3);
  std::size_t contexts = 0;
  for (const auto& c : state.compressors) contexts += c ? c->contexts() : 0;
  REQUIRE(contexts == 3);

  // The reload sends 10.2.0.0/16 to the peer "third" (no association): the flow of port 2 leaves.
  policy::Rule moved = tunnel_rule("10.2.0.0/16");
  moved.peer = 1;
  s.gw1.set_policy(policy::Policy({moved}, policy::Action::drop));
  s.tun1.inject(tcp4_segment(2, 2, 100, 0, 2));
  s.gw1.read_tun();
  CHECK(s.gw1.counters().dropped(gateway::Drop::peer_down) == 1);
  CHECK(s.gw1.flow_table().count_of_peer(0) == 2);
  CHECK(s.gw1.flow_table().count_of_peer(1) == 1);
  CHECK(state.bound_flows == 2);
  contexts = 0;
  for (const auto& c : state.compressors) contexts += c ? c->contexts() : 0;
  CHECK(contexts == 2);
}
