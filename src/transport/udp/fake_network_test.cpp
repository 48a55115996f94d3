#include "src/transport/udp/fake_network.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace {

using transport::udp::FakeConditions;
using transport::udp::FakeNetwork;

base::Endpoint ep(const char* address, std::uint16_t port) {
  return *base::Endpoint::parse(address, port);
}

// Runs the loop until pred() holds or `seconds` of wall time passed (bounded).
template <typename Pred>
bool run_until(base::EventLoop& loop, Pred pred, double seconds = 2.0) {
  double end = loop.now() + seconds;
  for (int i = 0; i < 1000000 && !pred(); ++i) {
    loop.run_once();  // does not block: a short sleep keeps this loop from spinning
    if (loop.now() > end) break;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return pred();
}

struct Received {
  std::vector<std::vector<std::uint8_t>> datagrams;
  std::vector<base::Endpoint> from;
  void take(transport::udp::DatagramSocket& s) {
    s.receive([&](const base::Endpoint& f, std::span<const std::uint8_t> d) {
      from.push_back(f);
      datagrams.emplace_back(d.begin(), d.end());
    });
  }
};

std::vector<std::uint8_t> numbered(std::uint32_t n) {
  return {static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n), 0xaa};
}

// Sends n numbered datagrams a -> b and collects what arrives within the loop's time.
std::vector<std::uint32_t> exchange(FakeNetwork& net, base::EventLoop& loop, int n,
                                    std::uint64_t* bad = nullptr) {
  auto a = net.open(ep("192.0.2.1", 9000), 0, 0);
  auto b = net.open(ep("192.0.2.2", 9000), 0, 0);
  for (int i = 0; i < n; ++i) a->queue(b->local(), numbered(static_cast<std::uint32_t>(i)));
  a->flush();
  Received r;
  run_until(
      loop,
      [&] {
        r.take(*b);
        return false;
      },
      0.05);
  std::vector<std::uint32_t> order;
  for (const auto& d : r.datagrams) {
    if (d.size() != 3 && bad) ++*bad;
    order.push_back(static_cast<std::uint32_t>(d[0] << 8 | d[1]));
  }
  return order;
}

}  // namespace

TEST_CASE("fake network: delivers in order to the bound socket, readable by fd") {
  base::EventLoop loop;
  FakeNetwork net(loop);
  auto order = exchange(net, loop, 50);
  REQUIRE(order.size() == 50);
  for (std::uint32_t i = 0; i < 50; ++i) CHECK(order[i] == i);
  CHECK(net.stats().delivered == 50);
}

TEST_CASE("fake network: loss, duplication and reordering follow the seed") {
  base::EventLoop loop;
  FakeNetwork net(loop, 7);
  net.set_conditions({.loss = 0.1, .duplicate = 0.05, .reorder = 0.1});
  auto first = exchange(net, loop, 1000);
  CHECK(net.stats().lost > 50);
  CHECK(net.stats().lost < 150);
  CHECK(net.stats().duplicated > 20);
  CHECK(net.stats().reordered > 50);
  CHECK(first.size() == 1000 - net.stats().lost + net.stats().duplicated);
  bool out_of_order = false;
  for (std::size_t i = 1; i < first.size(); ++i) out_of_order |= first[i] < first[i - 1];
  CHECK(out_of_order);

  base::EventLoop loop2;
  FakeNetwork again(loop2, 7);
  again.set_conditions(net.conditions());
  CHECK(exchange(again, loop2, 1000) == first);  // same seed, same fates
}

TEST_CASE("fake network: a cut pair drops both ways; healed it passes") {
  base::EventLoop loop;
  FakeNetwork net(loop);
  auto a = net.open(ep("192.0.2.1", 9000), 0, 0);
  auto b = net.open(ep("198.51.100.1", 9000), 0, 0);
  net.cut(a->local(), b->local());
  std::uint8_t x[3] = {1, 2, 3};
  CHECK(a->send_now(b->local(), x) == 0);
  CHECK(b->send_now(a->local(), x) == 0);
  Received ra, rb;
  run_until(
      loop,
      [&] {
        ra.take(*a);
        rb.take(*b);
        return false;
      },
      0.02);
  CHECK(ra.datagrams.empty());
  CHECK(rb.datagrams.empty());
  CHECK(net.stats().cut == 2);
  net.cut(a->local(), b->local(), false);
  a->send_now(b->local(), x);
  CHECK(run_until(loop, [&] {
    rb.take(*b);
    return rb.datagrams.size() == 1;
  }));
}

TEST_CASE("fake network: a NAT rewrites the source, answers reach the inside, rebinding moves it") {
  base::EventLoop loop;
  FakeNetwork net(loop);
  auto inside = net.open(ep("10.0.0.2", 5000), 0, 0);
  auto server = net.open(ep("198.51.100.1", 9000), 0, 0);
  net.nat(inside->local(), ep("203.0.113.1", 40000));
  std::uint8_t x[1] = {42};
  inside->send_now(server->local(), x);
  Received rs, ri;
  REQUIRE(run_until(loop, [&] {
    rs.take(*server);
    return !rs.datagrams.empty();
  }));
  CHECK(rs.from.back() == ep("203.0.113.1", 40000));
  server->send_now(rs.from.back(), x);
  REQUIRE(run_until(loop, [&] {
    ri.take(*inside);
    return !ri.datagrams.empty();
  }));
  CHECK(ri.from.back() == server->local());

  net.nat(inside->local(), ep("203.0.113.1", 40001));  // the NAT rebinds
  inside->send_now(server->local(), x);
  REQUIRE(run_until(loop, [&] {
    rs.take(*server);
    return rs.datagrams.size() == 2;
  }));
  CHECK(rs.from.back() == ep("203.0.113.1", 40001));
}

TEST_CASE("fake network: larger than the MTU is refused at the sender, unless fragmentable") {
  base::EventLoop loop;
  FakeNetwork net(loop);
  net.set_mtu(1280);
  auto a = net.open(ep("192.0.2.1", 9000), 0, 0);
  auto b = net.open(ep("192.0.2.2", 9000), 0, 0);
  std::vector<std::uint8_t> big(1280 - 28 + 1);
  CHECK(a->send_now(b->local(), big) == EMSGSIZE);
  CHECK(a->stats().too_big == 1);
  CHECK(a->send_fragmentable(b->local(), big) == 0);
  big.pop_back();
  CHECK(a->send_now(b->local(), big) == 0);
  CHECK_THROWS(net.open(ep("192.0.2.1", 9000), 0, 0));  // address in use
}
