#include "src/flow_table.hpp"

#include <doctest/doctest.h>

#include <set>

#include "src/test_packets.hpp"

namespace {
packet::FlowKey key_for_port(std::uint16_t port) {
  auto bytes = test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_TCP, port, 443);
  packet::PacketView view;
  packet::parse(bytes, view);
  return packet::FlowKey::of(view);
}
}  // namespace

TEST_CASE("flow table: open, find again, limit, expire") {
  flows::FlowTable table(3);
  flows::Flow* a = table.lookup_or_open(key_for_port(1), 0, 100.0);
  REQUIRE(a);
  a->assoc = 7;
  a->stream = 3;
  flows::Flow* again = table.lookup_or_open(key_for_port(1), 0, 101.0);
  CHECK(again == a);
  CHECK(again->stream == 3);
  CHECK(table.lookup_or_open(key_for_port(2), 0, 102.0));
  CHECK(table.lookup_or_open(key_for_port(3), 0, 103.0));
  CHECK(table.lookup_or_open(key_for_port(4), 0, 103.0) == nullptr);  // full
  CHECK(table.size() == 3);

  CHECK(table.count_bound_to(7) == 1);
  table.unbind_assoc(7);
  CHECK(table.count_bound_to(7) == 0);
  CHECK(table.lookup_or_open(key_for_port(1), 0, 104.0)->assoc == 0);

  CHECK(table.expire(200.0, 96.5) == 2);  // ports 2 and 3 idle 98 and 97 s; port 1 only 96 s
  CHECK(table.size() == 1);
}

TEST_CASE("flow table: a flow sent to another peer is rebound") {
  flows::FlowTable table(10);
  flows::Flow* flow = table.lookup_or_open(key_for_port(9), 0, 1.0);
  flow->assoc = 5;
  flow->stream = 2;
  flow = table.lookup_or_open(key_for_port(9), 1, 2.0);
  CHECK(flow->peer == 1);
  CHECK(flow->assoc == 0);
}

TEST_CASE("stream cursor: data streams only, round robin, shared when flows outnumber streams") {
  flows::StreamCursor none(1);
  CHECK(none.next() == 0);
  flows::StreamCursor cursor(4);  // streams 1, 2, 3 carry data
  std::vector<std::uint16_t> got;
  for (int i = 0; i < 7; ++i) got.push_back(cursor.next());
  CHECK(got == std::vector<std::uint16_t>{1, 2, 3, 1, 2, 3, 1});
}
