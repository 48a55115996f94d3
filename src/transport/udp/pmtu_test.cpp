#include "src/transport/udp/pmtu.hpp"

#include <sys/socket.h>

#include <vector>

#include <doctest/doctest.h>

using transport::udp::pmtu::Budget;
using transport::udp::pmtu::PathSample;

TEST_CASE("pmtu: without measurements the budget is [transport] path_mtu") {
  Budget b = transport::udp::pmtu::compute(1500, 20, {});
  CHECK(b.payload == 1472);
  CHECK(b.ip_mtu == 1500);
  CHECK(b.limiting == -1);
  CHECK(b.sctp_pathmtu() == 1460);  // what open_socket always set for 1500 over IPv4
  CHECK(transport::udp::pmtu::compute(1500, 40, {}).sctp_pathmtu() == 1440);
}

TEST_CASE("pmtu: a counted path with a smaller MTU lowers the budget; never above path_mtu") {
  std::vector<PathSample> paths = {{AF_INET, 1500, true}, {AF_INET, 1400, true}};
  Budget b = transport::udp::pmtu::compute(1500, 20, paths);
  CHECK(b.payload == 1372);
  CHECK(b.ip_mtu == 1400);
  CHECK(b.limiting == 1);
  CHECK(b.sctp_pathmtu() == 1360);
  // A larger route MTU (jumbo LAN) does not raise it above path_mtu.
  paths = {{AF_INET, 9000, true}};
  CHECK(transport::udp::pmtu::compute(1500, 20, paths) ==
        transport::udp::pmtu::compute(1500, 20, {}));
  // A tie keeps path_mtu as the reason.
  paths = {{AF_INET, 1500, true}};
  CHECK(transport::udp::pmtu::compute(1500, 20, paths).limiting == -1);
}

TEST_CASE("pmtu: paths that are down or unmeasured do not count") {
  std::vector<PathSample> paths = {
      {AF_INET, 1280, false}, {AF_INET, 0, true}, {AF_INET, 1492, true}};
  Budget b = transport::udp::pmtu::compute(1500, 20, paths);
  CHECK(b.ip_mtu == 1492);
  CHECK(b.limiting == 2);
  CHECK(b.payload == 1464);
}

TEST_CASE("pmtu: IPv6 paths pay 40 bytes of IP header, and MTUs are floored at the minimum") {
  std::vector<PathSample> paths = {{AF_INET, 1400, true}, {AF_INET6, 1400, true}};
  Budget b = transport::udp::pmtu::compute(1500, 40, paths);
  CHECK(b.limiting == 1);
  CHECK(b.payload == 1352);
  paths = {{AF_INET6, 1000, true}};
  CHECK(transport::udp::pmtu::compute(1500, 40, paths).ip_mtu == 1280);
  paths = {{AF_INET, 300, true}};
  b = transport::udp::pmtu::compute(1500, 20, paths);
  CHECK(b.ip_mtu == 552);
  CHECK(b.sctp_pathmtu() == 512);  // usrsctp's SCTP_SMALLEST_PMTU: it ignores anything smaller
}

TEST_CASE("pmtu: only a packet usrsctp lets fragment and that exceeds the budget is fragmented") {
  Budget b = transport::udp::pmtu::compute(1400, 20, {});
  CHECK_FALSE(
      transport::udp::pmtu::must_fragment(true, 1472, b));  // DF packets are never fragmented by us
  CHECK_FALSE(
      transport::udp::pmtu::must_fragment(false, 1372, b));  // INIT & co: set_df 0, but they fit
  CHECK(transport::udp::pmtu::must_fragment(false, 1373, b));
}

TEST_CASE("pmtu: a refusal re-checks at once, but not more often than min_gap") {
  CHECK(transport::udp::pmtu::recheck_delay(-1e9, 5.0, 0.05) == 0.0);
  CHECK(transport::udp::pmtu::recheck_delay(4.99, 5.0, 0.05) == doctest::Approx(0.04));
  CHECK(transport::udp::pmtu::recheck_delay(4.95, 5.0, 0.05) == 0.0);
}
