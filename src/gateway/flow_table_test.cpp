#include "src/gateway/flow_table.hpp"

#include <doctest/doctest.h>

#include <set>
#include <unordered_map>
#include <unordered_set>

#include "src/base/test_packets.hpp"

namespace {
base::packet::FlowKey key_for_port(std::uint16_t port) {
  auto bytes = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_TCP, port, 443);
  base::packet::PacketView view;
  base::packet::parse(bytes, view);
  return base::packet::FlowKey::of(view);
}
// The key of a reply to key_for_port(port), as the far side sends it back.
base::packet::FlowKey reply_key(std::uint16_t port) {
  auto bytes = base::test_packets::ipv4("10.2.0.2", "10.1.0.2", IPPROTO_TCP, 443, port);
  base::packet::PacketView view;
  base::packet::parse(bytes, view);
  return base::packet::FlowKey::of(view);
}
// Makes a TCP flow established: two packets out (the gateway counts them), one back.
void establish(gateway::FlowTable& table, gateway::Flow* flow, std::uint16_t port) {
  flow->packets = 2;
  table.note_inbound(reply_key(port));
  REQUIRE(flow->established);
}
}  // namespace

TEST_CASE("flow table: open, find again, limits, idle expiry per protocol") {
  gateway::Timeouts t;
  t.tcp_idle = 100;
  t.udp_idle = 10;
  gateway::FlowTable table(3, 2, t);
  gateway::Flow* a = table.lookup_or_open(key_for_port(1), 0, 100.0);
  REQUIRE(a);
  a->assoc = 7;
  a->stream = 3;
  gateway::Flow* again = table.lookup_or_open(key_for_port(1), 0, 101.0);
  CHECK(again == a);
  CHECK(again->stream == 3);
  establish(table, a, 1);
  gateway::Flow* b = table.lookup_or_open(key_for_port(2), 0, 102.0);
  REQUIRE(b);
  establish(table, b, 2);
  gateway::OpenResult why;
  CHECK(table.lookup_or_open(key_for_port(3), 0, 103.0, &why) == nullptr);  // peer 0 has its 2
  CHECK(why == gateway::OpenResult::peer_limit);
  gateway::Flow* c = table.lookup_or_open(key_for_port(3), 1, 103.0);
  REQUIRE(c);
  establish(table, c, 3);
  CHECK(table.lookup_or_open(key_for_port(4), 1, 103.0, &why) == nullptr);  // 3 in all
  CHECK(why == gateway::OpenResult::table_full);
  CHECK(table.count_of_peer(0) == 2);

  CHECK(table.count_bound_to(7) == 1);
  table.unbind_assoc(7);
  CHECK(table.count_bound_to(7) == 0);
  CHECK(table.lookup_or_open(key_for_port(1), 0, 104.0)->assoc == 0);

  std::vector<std::uint16_t> removed;
  table.set_on_remove(
      [&](const base::packet::FlowKey& k, const gateway::Flow&) { removed.push_back(k.src_port); });
  CHECK(table.expire(203.5) == 2);
  CHECK(removed.size() == 2);  // ports 2 and 3 idle past 100 s; port 1 was seen at 104
  CHECK(table.size() == 1);
  CHECK(table.count_of_peer(0) == 1);
  CHECK(table.lookup_or_open(key_for_port(5), 0, 204.0));  // the slot is free again
}

TEST_CASE("flow table: RST, or FIN both ways, end a TCP flow after the linger") {
  gateway::Timeouts t;
  t.linger = 2;
  gateway::FlowTable table(10, 10, t);
  auto key = key_for_port(80);
  table.lookup_or_open(key, 0, 10.0);
  table.note_tcp_flags(key, 0x11, true, 10.0);  // FIN+ACK out: half closed, not ending yet
  CHECK(table.expire(20.0) == 0);
  base::packet::FlowKey reply = key;
  std::swap(reply.src, reply.dst);
  std::swap(reply.src_port, reply.dst_port);
  table.note_tcp_flags(reply, 0x11, false, 20.0);  // FIN back
  table.lookup_or_open(key, 0, 21.0);              // the last ACK does not extend it
  CHECK(table.expire(21.9) == 0);
  CHECK(table.expire(22.1) == 1);

  auto other = key_for_port(81);
  table.lookup_or_open(other, 0, 30.0);
  table.note_tcp_flags(other, 0x04, true, 30.0);  // RST
  CHECK(table.expire(32.5) == 1);
}

TEST_CASE("flow table: a flow sent to another peer is rebound and counted there") {
  gateway::FlowTable table(10, 10);
  gateway::Flow* flow = table.lookup_or_open(key_for_port(9), 0, 1.0);
  flow->assoc = 5;
  flow->stream = 2;
  flow = table.lookup_or_open(key_for_port(9), 1, 2.0);
  CHECK(flow->peer == 1);
  CHECK(flow->assoc == 0);
  CHECK(table.count_of_peer(0) == 0);
  CHECK(table.count_of_peer(1) == 1);
}

TEST_CASE("stream cursor: data streams only, round robin, shared when flows outnumber streams") {
  gateway::StreamCursor none(1);
  CHECK(none.next() == 0);
  gateway::StreamCursor cursor(4);  // streams 1, 2, 3 carry data
  std::vector<std::uint16_t> got;
  for (int i = 0; i < 7; ++i) got.push_back(cursor.next());
  CHECK(got == std::vector<std::uint16_t>{1, 2, 3, 1, 2, 3, 1});
}

TEST_CASE(
    "flow table: a full table evicts the oldest unestablished or closing flow, never an "
    "established one") {
  gateway::FlowTable table(4, 8);
  std::vector<std::uint16_t> removed;
  table.set_on_remove(
      [&](const base::packet::FlowKey& k, const gateway::Flow&) { removed.push_back(k.src_port); });
  gateway::Flow* kept = table.lookup_or_open(key_for_port(1), 0, 1.0);
  REQUIRE(kept);
  kept->packets = 1;
  table.note_inbound(reply_key(1));
  CHECK_FALSE(kept->established);                                // a SYN and its SYN-ACK: not yet
  CHECK(table.lookup_or_open(key_for_port(1), 0, 1.5) == kept);  // the ACK: established now
  CHECK(kept->established);
  for (std::uint16_t port = 2; port <= 4; ++port)
    REQUIRE(table.lookup_or_open(key_for_port(port), 0, port));

  // A flood of new flows: each evicts the oldest of the unestablished ones.
  for (std::uint16_t port = 100; port < 110; ++port)
    REQUIRE(table.lookup_or_open(key_for_port(port), 0, 10.0));
  CHECK(table.size() == 4);
  CHECK(table.evicted() == 10);
  CHECK(removed == std::vector<std::uint16_t>{2, 3, 4, 100, 101, 102, 103, 104, 105, 106});
  CHECK(table.lookup_or_open(key_for_port(1), 0, 11.0) == kept);  // the established flow stayed

  // Established everywhere: nothing to evict, the new flow is refused.
  for (std::uint16_t port = 107; port < 110; ++port)
    establish(table, table.lookup_or_open(key_for_port(port), 0, 12.0), port);
  gateway::OpenResult why;
  CHECK(table.lookup_or_open(key_for_port(200), 0, 13.0, &why) == nullptr);
  CHECK(why == gateway::OpenResult::table_full);
  // A closing flow (RST) is evictable again.
  table.note_tcp_flags(key_for_port(108), 0x04, true, 14.0);
  CHECK(table.lookup_or_open(key_for_port(200), 0, 14.0));
  CHECK(removed.back() == 108);
  CHECK(table.lookup_or_open(key_for_port(1), 0, 15.0) == kept);
}

TEST_CASE("flow table: a peer at its share evicts only its own flows") {
  gateway::FlowTable table(10, 2);
  REQUIRE(table.lookup_or_open(key_for_port(1), 1, 1.0));  // peer 1: unestablished
  REQUIRE(table.lookup_or_open(key_for_port(2), 0, 2.0));
  REQUIRE(table.lookup_or_open(key_for_port(3), 0, 3.0));
  REQUIRE(table.lookup_or_open(key_for_port(4), 0, 4.0));  // evicts port 2, not peer 1's port 1
  CHECK(table.count_of_peer(0) == 2);
  CHECK(table.count_of_peer(1) == 1);
  CHECK(table.evicted() == 1);
}

namespace {
base::packet::FlowKey key_from(const char* src, std::uint16_t port) {
  auto bytes = base::test_packets::ipv4(src, "10.2.0.2", IPPROTO_TCP, port, 443);
  base::packet::PacketView view;
  base::packet::parse(bytes, view);
  return base::packet::FlowKey::of(view);
}
}  // namespace

TEST_CASE("flow table: a host at its share evicts its own unestablished flows, else is refused") {
  gateway::FlowTable table(100, 100, {}, 3);
  std::vector<std::uint16_t> removed;
  table.set_on_remove(
      [&](const base::packet::FlowKey& k, const gateway::Flow&) { removed.push_back(k.src_port); });
  REQUIRE(table.lookup_or_open(key_from("10.1.0.9", 50), 0, 1.0));  // another host, unestablished
  for (std::uint16_t port = 1; port <= 3; ++port)
    REQUIRE(table.lookup_or_open(key_for_port(port), 0, port));
  establish(table, table.lookup_or_open(key_for_port(1), 0, 4.0), 1);
  CHECK(table.count_of_host(key_for_port(1)) == 3);
  // At its share: the host's oldest unestablished flow (port 2) goes, not the other host's.
  REQUIRE(table.lookup_or_open(key_for_port(4), 0, 5.0));
  CHECK(removed == std::vector<std::uint16_t>{2});
  CHECK(table.count_of_host(key_for_port(1)) == 3);
  CHECK(table.count_of_host(key_from("10.1.0.9", 50)) == 1);
  establish(table, table.lookup_or_open(key_for_port(3), 0, 6.0), 3);
  establish(table, table.lookup_or_open(key_for_port(4), 0, 6.0), 4);
  gateway::OpenResult why;
  CHECK(table.lookup_or_open(key_for_port(5), 0, 7.0, &why) == nullptr);
  CHECK(why == gateway::OpenResult::host_limit);
  CHECK(table.lookup_or_open(key_from("10.1.0.10", 5), 0, 7.0));  // other hosts still open flows
  // A flow of the host that ends frees its place.
  table.note_tcp_flags(key_for_port(3), 0x04, true, 8.0);
  CHECK(table.expire(20.0) == 1);
  CHECK(table.lookup_or_open(key_for_port(5), 0, 21.0));
  CHECK(table.size() == 5);
}

TEST_CASE("flow table: a flow moved to another peer is reported before it is reset") {
  gateway::FlowTable table(10, 10);
  std::vector<gateway::Flow> left;
  table.set_on_remove(
      [&](const base::packet::FlowKey&, const gateway::Flow& f) { left.push_back(f); });
  gateway::Flow* flow = table.lookup_or_open(key_for_port(9), 0, 1.0);
  flow->assoc = 5;
  flow->stream = 2;
  table.lookup_or_open(key_for_port(9), 0, 1.5);
  CHECK(left.empty());
  flow = table.lookup_or_open(key_for_port(9), 1, 2.0);
  REQUIRE(left.size() == 1);
  CHECK(left[0].assoc == 5);
  CHECK(left[0].stream == 2);
  CHECK(left[0].peer == 0);
  CHECK(flow->assoc == 0);
  CHECK(table.size() == 1);
}

TEST_CASE("flow table: expiry removes exactly the flows a full scan would, at the same time") {
  // A brute-force model: every flow's ends_at, updated as the table documents; each expire()
  // must remove exactly those with now > ends_at. Timeouts span more than the deadline buckets.
  gateway::Timeouts t;
  t.tcp_idle = 3000;
  t.udp_idle = 7;
  t.other_idle = 1.5;
  t.linger = 2;
  gateway::FlowTable table(100000, 100000, t);
  std::unordered_map<base::packet::FlowKey, double> model;
  std::unordered_set<base::packet::FlowKey> closing, removed;
  table.set_on_remove(
      [&](const base::packet::FlowKey& k, const gateway::Flow&) { removed.insert(k); });
  // Flow i: its own source address; TCP, UDP or ICMP (the three timeout classes).
  auto key = [](std::uint64_t i) {
    std::uint8_t protocol = i % 3 == 0 ? IPPROTO_TCP : i % 3 == 1 ? IPPROTO_UDP : IPPROTO_ICMP;
    std::string src = "10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256);
    auto bytes = base::test_packets::ipv4(src, "10.2.0.2", protocol, 1000, 443);
    base::packet::PacketView view;
    base::packet::parse(bytes, view);
    return base::packet::FlowKey::of(view);
  };
  std::uint64_t seed = 12345;
  auto next = [&](std::uint64_t n) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return (seed >> 33) % n;
  };
  double now = 1000.0;
  for (int step = 0; step < 20000; ++step) {
    now += static_cast<double>(next(1000)) / (next(50) == 0 ? 1 : 400.0);
    base::packet::FlowKey k = key(next(600));
    std::uint64_t what = next(20);
    if (what == 0 && k.protocol == IPPROTO_TCP) {
      table.note_tcp_flags(k, 0x04, true, now);
      if (model.count(k) && !closing.count(k)) {
        model[k] = std::min(model[k], now + t.linger);
        closing.insert(k);
      }
    } else if (what == 1) {
      removed.clear();
      table.expire(now);
      std::unordered_set<base::packet::FlowKey> due;
      for (auto it = model.begin(); it != model.end();) {
        if (now > it->second) {
          due.insert(it->first);
          closing.erase(it->first);
          it = model.erase(it);
        } else {
          ++it;
        }
      }
      REQUIRE(removed.size() == due.size());
      REQUIRE(removed == due);
      REQUIRE(table.size() == model.size());
    } else {
      REQUIRE(table.lookup_or_open(k, 0, now));
      if (!closing.count(k)) model[k] = now + t.idle_for(k.protocol);
    }
  }
}
