// Striped flows through two gateways joined by a fake transport with two associations (one per
// "path"), whose messages are held per association until the test delivers them: so a test
// decides which path is slower, and checks what the far TUN gets.
#include <doctest/doctest.h>

#include <array>
#include <deque>

#include "src/gateway/gateway_test_sites.hpp"

namespace {

using gateway::test_sites::tcp4_segment;
using gateway::test_sites::tunnel_rule;

class TwoPaths;

// One side's end of TwoPaths: associations kIds[0] and kIds[1] (the other side's are +10).
class PathsEnd final : public transport::Transport {
 public:
  PathsEnd(TwoPaths& net, int side) : net_(net), side_(side) {}
  void set_events(transport::Events* events) override { events_ = events; }
  void start() override {}
  transport::SendResult send(transport::AssocId assoc, std::uint16_t stream,
                             std::span<const std::uint8_t> msg,
                             transport::SendOptions /*options*/ = {}) override;
  void abort(transport::AssocId, const char*) override {}
  std::vector<transport::AssocInfo> associations() const override { return {}; }
  transport::TransportStats stats() const override { return {}; }
  const char* kind() const override { return "two-paths"; }
  std::optional<transport::SendLoad> send_load(transport::AssocId assoc) const override;

  transport::Events* events_ = nullptr;
  struct Queued {
    std::uint16_t stream;
    std::vector<std::uint8_t> bytes;
  };
  std::array<std::deque<Queued>, 2> outbox;  // per association
  std::array<double, 2> srtt = {0.01, 0.01};
  // Bytes each association reports queued besides its outbox (a sender already held back).
  std::array<std::uint64_t, 2> backlog = {0, 0};

 private:
  TwoPaths& net_;
  int side_;
};

class TwoPaths {
 public:
  static constexpr std::array<transport::AssocId, 2> kIds = {1, 2};
  PathsEnd a{*this, 0}, b{*this, 1};

  static transport::AssocId id(int side, int path) { return kIds[path] + (side ? 10 : 0); }
  static int path_of(transport::AssocId assoc) { return static_cast<int>((assoc - 1) % 10); }

  void up() {
    for (int path : {0, 1}) {
      a.events_->on_assoc_up(id(0, path), 0, 16);
      b.events_->on_assoc_up(id(1, path), 0, 16);
    }
  }
  // Delivers what `from` queued on `path`, in order; returns how many.
  std::size_t deliver(PathsEnd& from, int path) {
    PathsEnd& to = &from == &a ? b : a;
    int to_side = &to == &a ? 0 : 1;
    std::size_t n = 0;
    tun::PacketBuf buf;
    while (!from.outbox[path].empty()) {
      PathsEnd::Queued q = std::move(from.outbox[path].front());
      from.outbox[path].pop_front();
      buf.assign(q.bytes);
      to.events_->on_message(id(to_side, path), q.stream, buf);
      ++n;
    }
    return n;
  }
  // Everything, both ways, path 0 first, until nothing moves (handshakes and replies).
  void deliver_all() {
    for (int round = 0; round < 100; ++round) {
      std::size_t n = 0;
      for (int path : {0, 1}) n += deliver(a, path) + deliver(b, path);
      if (n == 0) return;
    }
  }
};

transport::SendResult PathsEnd::send(transport::AssocId assoc, std::uint16_t stream,
                                     std::span<const std::uint8_t> msg, transport::SendOptions) {
  outbox[TwoPaths::path_of(assoc)].push_back({stream, {msg.begin(), msg.end()}});
  return transport::SendResult::ok;
}

std::optional<transport::SendLoad> PathsEnd::send_load(transport::AssocId assoc) const {
  int path = TwoPaths::path_of(assoc);
  transport::SendLoad load;
  load.path = static_cast<std::size_t>(path);
  load.window = 64 << 10;
  load.srtt = srtt[path];
  load.queued = backlog[path];
  for (const Queued& q : outbox[path]) load.queued += q.bytes.size();
  return load;
}

struct Sites {
  base::EventLoop loop;
  tun::FakeTun tun1{"tun1"}, tun2{"tun2"};
  TwoPaths net;
  gateway::Gateway gw1, gw2;

  static gateway::Options options(std::uint32_t instance, bool stripe) {
    gateway::PeerSecurity security;
    security.compression = true;
    security.stripe = stripe;
    gateway::Options o;
    o.peer_names = {"other"};
    o.peer_security = {security};
    o.instance = instance;
    o.batch_size = 64;
    return o;
  }
  Sites(bool stripe1, bool stripe2)
      : gw1(loop, tun1, net.a, nullptr,
            policy::Policy({tunnel_rule("10.2.0.0/16")}, policy::Action::drop),
            options(1, stripe1)),
        gw2(loop, tun2, net.b, nullptr,
            policy::Policy({tunnel_rule("10.1.0.0/16")}, policy::Action::drop),
            options(2, stripe2)) {
    net.up();
    net.deliver_all();  // HELLOs
  }
};

std::vector<std::vector<std::uint8_t>> bulk(std::size_t n) {
  std::vector<std::vector<std::uint8_t>> packets;
  for (std::size_t i = 0; i < n; ++i)
    packets.push_back(tcp4_segment(static_cast<std::uint32_t>(1000 + i * 1200),
                                   static_cast<std::uint16_t>(i), 1200));
  return packets;
}

std::size_t sequenced_in(const PathsEnd& end, int path) {
  std::size_t n = 0;
  for (const auto& q : end.outbox[path])
    n += q.bytes[0] == static_cast<std::uint8_t>(gateway::wire::Type::sequenced);
  return n;
}

// Sends packets (one flow) from gw1 and checks that they went unnumbered on one association and
// reached the far TUN as they were.
void check_whole(Sites& s, const std::vector<std::vector<std::uint8_t>>& packets) {
  for (const auto& p : packets) s.tun1.inject(p);
  s.gw1.read_tun();
  CHECK(sequenced_in(s.net.a, 0) + sequenced_in(s.net.a, 1) == 0);
  CHECK((s.net.a.outbox[0].empty() || s.net.a.outbox[1].empty()));
  s.net.deliver_all();
  CHECK(s.tun2.take_written() == packets);
  CHECK(s.gw1.counters().striped_packets == 0);
}

}  // namespace

TEST_CASE(
    "gateway: a striped flow goes on both associations and comes out of the far TUN in order, "
    "whichever path delivers first") {
  Sites s(true, true);
  REQUIRE(s.gw1.peers()[0].ready_assocs.size() == 2);
  REQUIRE(s.gw2.peers()[0].ready_assocs.size() == 2);
  s.net.a.backlog = {1 << 20, 1 << 20};  // both held back: the flow stripes from its first packet
  auto packets = bulk(200);
  for (const auto& p : packets) s.tun1.inject(p);
  s.gw1.read_tun();
  // Equal paths: each took a share, every packet numbered.
  std::size_t on0 = sequenced_in(s.net.a, 0), on1 = sequenced_in(s.net.a, 1);
  CHECK(on0 + on1 == 200);
  CHECK(on0 >= 50);
  CHECK(on1 >= 50);
  CHECK(s.gw1.counters().striped_packets == 200);
  // Path 1 delivers all of its packets before path 0 delivers any: they wait, then all leave
  // in order, byte-exact (compressed on their own association's stream).
  s.net.deliver(s.net.a, 1);
  auto early = s.tun2.take_written();  // only those before the first that went on path 0
  CHECK(early.size() < on1);
  s.net.deliver(s.net.a, 0);
  auto late = s.tun2.take_written();
  early.insert(early.end(), late.begin(), late.end());
  CHECK(early == packets);
  CHECK(s.gw2.resequencer_stats().held > 0);
  CHECK(s.gw2.resequencer_stats().gaps_skipped == 0);
  CHECK(s.gw1.counters().hc_packets == 200);
}

TEST_CASE(
    "gateway: a slower path gets less of a striped flow; with its peer gone, what waits leaves") {
  Sites s(true, true);
  s.net.a.srtt = {0.01, 0.05};      // path 1: five times the RTT
  s.net.a.backlog = {64 << 10, 0};  // the flow's own association (path 0) is full: it stripes
  auto packets = bulk(200);
  for (const auto& p : packets) s.tun1.inject(p);
  s.gw1.read_tun();
  std::size_t on0 = sequenced_in(s.net.a, 0), on1 = sequenced_in(s.net.a, 1);
  CHECK(on0 + on1 == 200);
  CHECK(on1 > 0);
  CHECK(on0 > 2 * on1);
  // Path 0's packets arrive, path 1's never do: the far side holds what follows the first gap
  // until its associations are all gone.
  s.net.deliver(s.net.a, 0);
  auto first = s.tun2.take_written();
  CHECK(first.size() < on0);
  s.gw2.on_assoc_down(TwoPaths::id(1, 0));
  s.gw2.on_assoc_down(TwoPaths::id(1, 1));
  auto rest = s.tun2.take_written();
  CHECK(first.size() + rest.size() == on0);
  CHECK(s.gw2.resequencer_stats().gaps_skipped > 0);
}

TEST_CASE("gateway: no striping unless both ends offer it") {
  for (auto [stripe1, stripe2] : {std::pair{true, false}, std::pair{false, true}}) {
    CAPTURE(stripe1);
    Sites s(stripe1, stripe2);
    s.net.a.backlog = {1 << 20, 1 << 20};  // held back, yet not striped
    check_whole(s, bulk(50));
  }
}

TEST_CASE("gateway: a flow its association does not hold back stays whole on it, unnumbered") {
  Sites s(true, true);
  check_whole(s, bulk(20));  // 26 KB: no queue worth striping for on a 64 KB window
}
