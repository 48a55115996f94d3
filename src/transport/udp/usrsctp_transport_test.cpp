// Two usrsctp transports in one process, over the in-memory network (fake_network.hpp): no
// root, no sockets of the host. usrsctp's timers run on the loop's real time, so every wait
// below is bounded in loop iterations and in seconds.
//
//   site a  192.0.2.1:9899 ----------+              +---------- 192.0.2.2:9899     site b
//           198.51.100.1:9899 -------+  FakeNetwork +------- 198.51.100.2:9899
//           100.64.0.2 (behind a NAT:|  loss, dups, |
//           192.0.2.10/.11)          |  reorder,    |   198.18.0.2:40400  (replays)
//                                    +- cuts, NAT --+
// (each test uses the addresses it names)

#include "src/transport/udp/usrsctp_transport.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "src/base/bytes.hpp"
#include "src/base/crc32c.hpp"
#include "src/base/test_log.hpp"
#include "src/crypto/session.hpp"
#include "src/transport/udp/fake_network.hpp"

namespace {

using transport::AssocId;
using transport::PeerId;
using transport::SendResult;
using transport::udp::FakeNetwork;
using transport::udp::UsrsctpOptions;
using transport::udp::UsrsctpTransport;

base::Endpoint ep(const char* address, std::uint16_t port = 9899) {
  return *base::Endpoint::parse(address, port);
}

struct Recorder final : transport::Events {
  std::set<AssocId> up;
  std::vector<AssocId> downs;
  std::map<std::pair<AssocId, std::uint16_t>, std::vector<std::vector<std::uint8_t>>> messages;
  std::size_t received = 0;
  int writable = 0;
  void on_assoc_up(AssocId assoc, PeerId, std::uint16_t) override { up.insert(assoc); }
  void on_assoc_down(AssocId assoc) override {
    up.erase(assoc);
    downs.push_back(assoc);
  }
  void on_message(AssocId assoc, std::uint16_t stream, tun::PacketBuf& msg) override {
    messages[{assoc, stream}].emplace_back(msg.data().begin(), msg.data().end());
    ++received;
  }
  void on_writable() override { ++writable; }
};

struct Site {
  Recorder events;
  std::unique_ptr<UsrsctpTransport> transport;
};

// Where each site is: its local addresses and the remotes it has for the other (empty: it
// must learn them).
struct Layout {
  std::vector<const char*> a_locals = {"192.0.2.1"}, b_locals = {"192.0.2.2"};
  std::vector<const char*> a_remotes = {"192.0.2.2"}, b_remotes = {"192.0.2.1"};
  std::uint16_t pool = 2;
  bool aggregate = false;  // [transport] multipath = "aggregate" on both sides
};

// Two uplinks at each site, each site knowing both of the other's addresses: four paths.
Layout two_uplinks(std::uint16_t pool, bool aggregate = false) {
  Layout layout;
  layout.pool = pool;
  layout.aggregate = aggregate;
  layout.a_locals = {"192.0.2.1", "198.51.100.1"};
  layout.b_locals = {"192.0.2.2", "198.51.100.2"};
  layout.a_remotes = {"192.0.2.2", "198.51.100.2"};
  layout.b_remotes = {"192.0.2.1", "198.51.100.1"};
  return layout;
}

struct TwoSites {
  base::EventLoop loop;
  FakeNetwork network;
  Site a, b;

  explicit TwoSites(std::uint64_t seed = 1, const Layout& layout = {}) : network(loop, seed) {
    REQUIRE(crypto::init());
    make(a, layout.a_locals, layout.a_remotes, "b", layout.pool, layout.aggregate);
    make(b, layout.b_locals, layout.b_remotes, "a", layout.pool, layout.aggregate);
  }

  void make(Site& site, const std::vector<const char*>& locals,
            const std::vector<const char*>& remotes, const char* peer_name, std::uint16_t pool,
            bool aggregate = false) {
    UsrsctpOptions options;
    options.aggregate = aggregate;
    for (const char* l : locals) options.locals.push_back(ep(l));
    options.network = &network;
    transport::PeerEndpoints peer;
    peer.name = peer_name;
    for (const char* r : remotes) peer.remotes.push_back(ep(r));
    peer.pool = pool;
    crypto::Key psk{};
    psk[0] = 42;
    peer.path_key = transport::path_auth::derive(psk);
    site.transport = std::make_unique<UsrsctpTransport>(loop, options, std::vector{peer});
    site.transport->set_events(&site.events);
  }

  void start() {
    a.transport->start();
    b.transport->start();
  }

  // Runs the loop until pred() holds, at most `seconds` (and a bounded number of iterations).
  template <typename Pred>
  bool run_until(Pred pred, double seconds) {
    double end = loop.now() + seconds;
    for (long i = 0; i < 5'000'000 && !pred(); ++i) {
      loop.run_once();  // does not block: a short sleep keeps this loop from spinning
      if (loop.now() > end) break;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    return pred();
  }

  bool all_up(std::size_t pool) { return a.events.up.size() == pool && b.events.up.size() == pool; }
};

std::vector<std::uint8_t> message(std::uint32_t n, std::size_t size) {
  std::vector<std::uint8_t> m(size);
  for (std::size_t i = 0; i < size; ++i) m[i] = static_cast<std::uint8_t>(n * 131 + i * 7);
  return m;
}

// Sends `count` messages from a to b on `streams` streams of one association, as fast as the
// window lets them (would_block: run the loop until on_writable). Returns what was sent per stream.
std::map<std::uint16_t, std::vector<std::vector<std::uint8_t>>> send_many(TwoSites& s,
                                                                          AssocId assoc, int count,
                                                                          std::uint16_t streams) {
  std::map<std::uint16_t, std::vector<std::vector<std::uint8_t>>> sent;
  for (int i = 0; i < count; ++i) {
    auto stream = static_cast<std::uint16_t>(i % streams);
    auto m = message(static_cast<std::uint32_t>(i), 200 + static_cast<std::size_t>(i * 37 % 1200));
    SendResult r = s.a.transport->send(assoc, stream, m);
    for (int tries = 0; r == SendResult::would_block && tries < 1000; ++tries) {
      int before = s.a.events.writable;
      s.run_until([&] { return s.a.events.writable > before; }, 1.0);
      r = s.a.transport->send(assoc, stream, m);
    }
    REQUIRE(r == SendResult::ok);
    sent[stream].push_back(std::move(m));
  }
  return sent;
}

// Sends `count` messages of `size` bytes from `from` on `stream` of `assoc`, one per loop
// iteration while the window takes them, and runs the loop until `to` has received `count`
// messages in all, at most 10 s. True if it has.
bool send_until_delivered(TwoSites& s, Site& from, Site& to, AssocId assoc, std::uint16_t stream,
                          std::size_t count, std::size_t size) {
  std::size_t sent = 0;
  return s.run_until(
      [&] {
        if (sent < count &&
            from.transport->send(assoc, stream, message(static_cast<std::uint32_t>(sent), size)) ==
                SendResult::ok)
          ++sent;
        return sent == count && to.events.received == count;
      },
      10.0);
}

// An SCTP packet with the ports and verification tag of captured (an SCTP packet) and one chunk
// (type, flags, body), its CRC32c set.
std::vector<std::uint8_t> forge_chunk(const std::vector<std::uint8_t>& captured, std::uint8_t type,
                                      std::uint8_t flags, const std::vector<std::uint8_t>& body) {
  std::size_t len = 4 + body.size();
  std::vector<std::uint8_t> p((12 + len + 3) & ~std::size_t{3}, 0);
  std::copy(captured.begin(), captured.begin() + 12, p.begin());
  p[12] = type;
  p[13] = flags;
  base::store_be16(p.data() + 14, static_cast<std::uint16_t>(len));
  std::copy(body.begin(), body.end(), p.begin() + 16);
  base::crc32c::set_sctp_checksum(p);
  return p;
}

}  // namespace

TEST_CASE("usrsctp over the fake network: the pool comes up on both sides") {
  TwoSites s;
  s.start();
  REQUIRE(s.run_until([&] { return s.all_up(2); }, 10.0));
  auto list = s.a.transport->associations();
  CHECK(list.size() == 2);
  for (const auto& info : list) CHECK(info.state == "established");
  CHECK(s.network.stats().delivered > 0);
}

TEST_CASE(
    "usrsctp over the fake network: messages on many streams arrive byte-exact, in order "
    "per stream, under 5 % loss, duplication and reordering") {
  TwoSites s(3);
  s.start();
  REQUIRE(s.run_until([&] { return s.all_up(2); }, 10.0));
  s.network.set_conditions({.loss = 0.05, .duplicate = 0.01, .reorder = 0.05});
  AssocId assoc = *s.a.events.up.begin();
  constexpr int kCount = 2000;
  auto sent = send_many(s, assoc, kCount, 16);
  REQUIRE(s.run_until([&] { return s.b.events.received >= kCount; }, 20.0));
  CHECK(s.b.events.received == kCount);
  for (const auto& [stream, messages] : sent) {
    // b names the association by its own id: find b's record of this stream.
    bool found = false;
    for (const auto& [key, got] : s.b.events.messages) {
      if (key.second == stream && got == messages) found = true;
    }
    CHECK_MESSAGE(found, "stream " << stream);
  }
  CHECK(s.network.stats().lost > 0);
  CHECK(s.network.stats().reordered > 0);
  CHECK(s.network.stats().duplicated > 0);
}

TEST_CASE("usrsctp over the fake network: an aborted association is replaced in the pool") {
  TwoSites s;
  s.start();
  REQUIRE(s.run_until([&] { return s.all_up(2); }, 10.0));
  AssocId victim = *s.a.events.up.begin();
  s.a.transport->abort(victim, "test");
  CHECK(std::count(s.a.events.downs.begin(), s.a.events.downs.end(), victim) == 1);
  // The slot reconnects after its hold-off; both sides end with a full pool again.
  REQUIRE(s.run_until([&] { return s.all_up(2) && !s.a.events.up.contains(victim); }, 10.0));
  CHECK(s.b.events.downs.size() >= 1);
}

TEST_CASE("usrsctp over the fake network: when one of two paths is cut, traffic fails over") {
  TwoSites s(5, two_uplinks(1));
  s.start();
  REQUIRE(s.run_until([&] { return s.all_up(1); }, 10.0));
  auto primary = [&] {
    auto list = s.a.transport->associations();
    for (const auto& p : list.front().paths)
      if (p.primary) return p.local + " -> " + p.remote;
    return std::string();
  };
  // Every path (each local socket to each of the peer's addresses) probed and up before the cut.
  REQUIRE(s.run_until(
      [&] {
        auto paths = s.a.transport->associations().front().paths;
        return paths.size() == 4 &&
               std::all_of(paths.begin(), paths.end(),
                           [](const auto& p) { return p.state == "up"; }) &&
               primary() ==
                   "192.0.2.1:9899 -> 192.0.2.2:9899";  // the first path, failed back to once up
      },
      10.0));
  // a's first uplink dies: nothing reaches or leaves 192.0.2.1.
  s.network.cut(ep("192.0.2.1"), ep("192.0.2.2"));
  s.network.cut(ep("192.0.2.1"), ep("198.51.100.2"));
  AssocId assoc = *s.a.events.up.begin();
  // Messages sent across the cut all arrive, on the same association.
  REQUIRE(send_until_delivered(s, s.a, s.b, assoc, 1, 200, 500));
  CHECK(primary().starts_with("198.51.100.1:9899 -> "));
  CHECK(s.a.transport->associations().front().path_changes >= 1);
  CHECK(s.a.events.downs.empty());
}

TEST_CASE(
    "usrsctp over the fake network: a redundant stream goes on every path, arrives once, and "
    "a cut path delays none of it") {
  // A message every 10 ms on stream 1 of a's one association, 10 ms each way; a's first uplink
  // is cut at the 30th. Sent redundant, no message waits for the failover; sent plainly, those
  // sent into the dead path wait for it (the contrast shows the cut is real).
  for (bool redundant : {true, false}) {
    CAPTURE(redundant);
    TwoSites s(11, two_uplinks(1));
    s.network.set_conditions({.delay = 0.01});
    s.start();
    REQUIRE(s.run_until([&] { return s.all_up(1); }, 10.0));
    REQUIRE(s.run_until(
        [&] {
          auto paths = s.a.transport->associations().front().paths;
          return paths.size() == 4 && std::all_of(paths.begin(), paths.end(), [](const auto& p) {
                   bool first =
                       p.local.starts_with("192.0.2.1:") && p.remote.starts_with("192.0.2.2:");
                   return p.state == "up" && p.primary == first;
                 });
        },
        10.0));
    AssocId assoc = *s.a.events.up.begin();
    constexpr std::size_t kCount = 100, kCutAt = 30;
    std::vector<double> sent_at;
    std::size_t delivered = 0;
    double worst = 0, next = s.loop.now();
    std::size_t worst_at = 0;
    s.run_until(
        [&] {
          double now = s.loop.now();
          for (; delivered < sent_at.size() && s.b.events.received > delivered; ++delivered) {
            if (now - sent_at[delivered] > worst) worst_at = delivered;
            worst = std::max(worst, now - sent_at[delivered]);
          }
          if (sent_at.size() < kCount && now >= next) {
            if (sent_at.size() == kCutAt) {
              s.network.cut(ep("192.0.2.1"), ep("192.0.2.2"));
              s.network.cut(ep("192.0.2.1"), ep("198.51.100.2"));
            }
            auto m = message(static_cast<std::uint32_t>(sent_at.size()), 120);
            if (s.a.transport->send(assoc, 1, m, {.redundant = redundant}) == SendResult::ok)
              sent_at.push_back(now);
            next += 0.01;
          }
          return delivered == kCount;
        },
        10.0);
    REQUIRE(delivered == kCount);
    // Each message once, in order, byte-exact: SCTP dropped every later copy.
    const auto& got = s.b.events.messages[{*s.b.events.up.begin(), 1}];
    REQUIRE(got.size() == kCount);
    for (std::size_t i = 0; i < kCount; ++i)
      CHECK(got[i] == message(static_cast<std::uint32_t>(i), 120));
    MESSAGE("largest delivery delay " << worst * 1000 << " ms, message " << worst_at);
    if (redundant) {
      CHECK(worst < 0.03);  // the one-way delay, 10 ms, and the loop's granularity
      // Before the cut each packet went on the other three paths as well.
      CHECK(s.a.transport->stats().redundant_copies_out >= 3 * kCutAt);
      CHECK(s.b.transport->stats().redundant_copies_in >= kCutAt);
    } else {
      CHECK(worst > 0.1);
      CHECK(s.a.transport->stats().redundant_copies_out == 0);
    }
    CHECK(s.a.events.downs.empty());
  }
}

TEST_CASE(
    "usrsctp over the fake network: aggregate mode spreads the pool over both uplinks, and a cut "
    "moves a slot to the other") {
  TwoSites s(7, two_uplinks(2, true));
  s.start();
  REQUIRE(s.run_until([&] { return s.all_up(2); }, 10.0));
  // The path each association of a sends on, by slot.
  auto carriers = [&] {
    std::map<std::uint16_t, std::string> out;
    for (const auto& a : s.a.transport->associations())
      for (const auto& p : a.paths)
        if (p.active) out[a.slot] = p.local + " -> " + p.remote;
    return out;
  };
  // Once every path has been up for the hold: slot 0 on the first uplink at both ends, slot 1 on
  // the second (not the cross paths, which share an uplink with slot 0's at one end).
  REQUIRE(s.run_until(
      [&] {
        auto c = carriers();
        return c[0] == "192.0.2.1:9899 -> 192.0.2.2:9899" &&
               c[1] == "198.51.100.1:9899 -> 198.51.100.2:9899";
      },
      10.0));
  std::vector<AssocId> assocs(s.a.events.up.begin(), s.a.events.up.end());
  REQUIRE(assocs.size() == 2);
  auto bytes_out = [&](const std::string& local) {
    std::uint64_t n = 0;
    auto list = s.a.transport->associations();
    for (const auto& p : list.front().paths)
      if (p.local.starts_with(local)) n += p.bytes_out;
    return n;
  };
  std::uint64_t first = bytes_out("192.0.2.1:"), second = bytes_out("198.51.100.1:");
  for (AssocId assoc : assocs) {
    s.b.events.received = 0;
    REQUIRE(send_until_delivered(s, s.a, s.b, assoc, 1, 100, 800));
  }
  CHECK(bytes_out("192.0.2.1:") - first > 40'000);
  CHECK(bytes_out("198.51.100.1:") - second > 40'000);
  // a's first uplink dies: its slot moves to the second, and messages across the cut all arrive
  // on the same associations.
  s.network.cut(ep("192.0.2.1"), ep("192.0.2.2"));
  s.network.cut(ep("192.0.2.1"), ep("198.51.100.2"));
  for (AssocId assoc : assocs) {
    s.b.events.received = 0;
    REQUIRE(send_until_delivered(s, s.a, s.b, assoc, 2, 150, 600));
  }
  auto c = carriers();
  CHECK(c[0].starts_with("198.51.100.1:9899 -> "));
  CHECK(c[1].starts_with("198.51.100.1:9899 -> "));
  CHECK(s.a.events.downs.empty());
}

namespace {

// a's paths to b by "local -> remote" (every association lists the same; the first's).
std::map<std::string, transport::PathInfo> paths_by_name(TwoSites& s) {
  std::map<std::string, transport::PathInfo> out;
  auto list = s.a.transport->associations();
  for (const auto& p : list.front().paths) out[p.local + " -> " + p.remote] = p;
  return out;
}

}  // namespace

TEST_CASE(
    "usrsctp over the fake network: in aggregate mode show's path statistics name both carrying "
    "paths active, with their rates, shares and congestion windows") {
  TwoSites s(7, two_uplinks(2, true));
  s.start();
  REQUIRE(s.run_until([&] { return s.all_up(2); }, 10.0));
  const std::string first = "192.0.2.1:9899 -> 192.0.2.2:9899";
  const std::string second = "198.51.100.1:9899 -> 198.51.100.2:9899";
  REQUIRE(s.run_until(
      [&] {
        auto paths = paths_by_name(s);
        return paths.size() == 4 && paths[first].role == "active" && paths[second].role == "active";
      },
      10.0));
  s.run_until([] { return false; }, 0.25);  // rates and shares need a sample (every 100 ms)
  for (AssocId assoc : std::vector<AssocId>(s.a.events.up.begin(), s.a.events.up.end())) {
    s.b.events.received = 0;
    REQUIRE(send_until_delivered(s, s.a, s.b, assoc, 1, 200, 1000));
  }
  auto paths = paths_by_name(s);
  double shares = 0;
  for (const auto& [name, p] : paths) {
    CAPTURE(name);
    MESSAGE(name << ": " << p.role << ", out " << p.rate_out << " bit/s (" << p.share_pct
                 << " %), in " << p.rate_in << " bit/s, cwnd " << p.cwnd << ", data loss "
                 << p.data_loss_pct << " %");
    shares += p.share_pct;
    bool carries = name == first || name == second;
    CHECK(p.role == (carries ? "active" : "standby"));
    CHECK(p.state == "up");
    if (carries) {
      // 200 KB in well under the second the rates cover: far above 100 kbit/s.
      CHECK(p.rate_out > 100'000);
      CHECK(p.rate_in > 0);  // b's SACKs
      CHECK(p.share_pct > 10);
      CHECK(p.cwnd > 0);
    } else {
      CHECK(p.cwnd == 0);
      CHECK(p.rate_out == 0);
    }
    CHECK(p.data_loss_pct == 0);  // the network loses nothing
  }
  CHECK(shares == doctest::Approx(100).epsilon(0.001));
  CHECK(s.a.events.downs.empty());
}

TEST_CASE(
    "usrsctp over the fake network: in failover mode show names the primary active and the "
    "others standby, and a cut path down") {
  TwoSites s(5, two_uplinks(2));
  s.start();
  REQUIRE(s.run_until([&] { return s.all_up(2); }, 10.0));
  const std::string first = "192.0.2.1:9899 -> 192.0.2.2:9899";
  REQUIRE(s.run_until(
      [&] {
        auto paths = paths_by_name(s);
        return paths.size() == 4 && paths[first].primary &&
               std::all_of(paths.begin(), paths.end(),
                           [](const auto& p) { return p.second.state == "up"; });
      },
      10.0));
  s.run_until([] { return false; }, 0.25);  // shares need a sample (every 100 ms)
  std::vector<AssocId> assocs(s.a.events.up.begin(), s.a.events.up.end());
  for (AssocId assoc : assocs) {
    s.b.events.received = 0;
    REQUIRE(send_until_delivered(s, s.a, s.b, assoc, 1, 100, 1000));
  }
  for (const auto& [name, p] : paths_by_name(s)) {
    CAPTURE(name);
    CHECK(p.role == (name == first ? "active" : "standby"));
    CHECK((p.cwnd > 0) == (name == first));
    CHECK(p.share_pct == doctest::Approx(name == first ? 100 : 0));
  }
  // a's first uplink dies: both its paths go down, the traffic moves to a path of the other.
  s.network.cut(ep("192.0.2.1"), ep("192.0.2.2"));
  s.network.cut(ep("192.0.2.1"), ep("198.51.100.2"));
  for (AssocId assoc : assocs) {
    s.b.events.received = 0;
    REQUIRE(send_until_delivered(s, s.a, s.b, assoc, 2, 100, 1000));
  }
  // What went into the dead path was resent on the new primary, within the last second.
  for (const auto& [name, p] : paths_by_name(s)) {
    CAPTURE(name);
    if (p.primary) CHECK(p.data_loss_pct > 0);
  }
  REQUIRE(s.run_until(
      [&] {
        auto paths = paths_by_name(s);
        return std::all_of(paths.begin(), paths.end(), [](const auto& p) {
          return p.second.role == (p.first.starts_with("192.0.2.1:") ? "down"
                                   : p.second.primary                ? "active"
                                                                     : "standby");
        });
      },
      10.0));
  for (const auto& [name, p] : paths_by_name(s)) {
    CAPTURE(name);
    MESSAGE(name << ": " << p.role << ", out " << p.rate_out << " bit/s (" << p.share_pct
                 << " %), cwnd " << p.cwnd << ", data loss " << p.data_loss_pct << " %");
    if (name.starts_with("192.0.2.1:")) {
      CHECK(p.state == "down");
      CHECK(p.cwnd == 0);
    }
    if (p.primary) CHECK(p.cwnd > 0);
  }
  CHECK(s.a.events.downs.empty());
}

TEST_CASE(
    "usrsctp over the fake network: a site behind a NAT is learned, and followed when the NAT "
    "rebinds") {
  Layout layout;
  layout.a_locals = {"100.64.0.2"};
  layout.a_remotes = {"192.0.2.2"};
  layout.b_remotes = {};  // b does not know where a is
  layout.pool = 1;
  TwoSites s(7, layout);
  s.network.nat(ep("100.64.0.2"), ep("192.0.2.10", 40000));
  s.start();
  REQUIRE(s.run_until([&] { return s.all_up(1); }, 10.0));
  auto b_paths = [&] { return s.b.transport->associations().front().paths; };
  REQUIRE(b_paths().size() == 1);
  CHECK(b_paths().front().remote == "192.0.2.10:40000");
  CHECK(b_paths().front().learned);
  CHECK(s.b.transport->stats().paths_learned == 1);

  s.network.nat(ep("100.64.0.2"), ep("192.0.2.11", 40001));  // a new external address and port
  AssocId assoc = *s.b.events.up.begin();
  REQUIRE(send_until_delivered(s, s.b, s.a, assoc, 2, 100, 300));
  CHECK(b_paths().front().remote == "192.0.2.11:40001");
  CHECK(s.b.transport->stats().path_moves == 1);
  CHECK(s.a.events.downs.empty());
  CHECK(s.b.events.downs.empty());
}

TEST_CASE("usrsctp over the fake network: a stranger's flood of datagrams gets one log line each") {
  TwoSites s;
  auto stranger = s.network.open(ep("198.18.0.2", 40400), 0, 0);
  s.start();
  REQUIRE(s.run_until([&] { return s.all_up(2); }, 10.0));
  base::test::LogCapture capture;
  std::vector<std::uint8_t> junk(40, 0x5a), old_probe(52, 0);
  base::crc32c::set_sctp_checksum(junk);  // past the checksum: dropped for its source
  base::store_be32(old_probe.data() + 4, transport::path_auth::kMagic);  // an earlier version's
  for (int i = 0; i < 500; ++i) {
    stranger->send_now(ep("192.0.2.2"), junk);
    stranger->send_now(ep("192.0.2.2"), old_probe);
  }
  s.run_until([] { return false; }, 0.3);
  CHECK(s.b.transport->stats().datagrams_unknown_source == 500);
  CHECK(s.b.transport->stats().datagrams_malformed == 500);
  CHECK(capture.count("which is no peer's address") == 1);
  CHECK(capture.count("earlier sctptund") == 1);
  CHECK(capture.lines().size() == 2);
}

TEST_CASE("usrsctp over the fake network: probes replayed from a third address move nothing") {
  Layout layout;  // a behind a NAT, learned by b from its probes (as above)
  layout.a_locals = {"100.64.0.2"};
  layout.b_remotes = {};
  layout.pool = 1;
  TwoSites s(9, layout);
  s.network.nat(ep("100.64.0.2"), ep("192.0.2.10", 40000));
  crypto::Key psk{};
  psk[0] = 42;
  auto key = transport::path_auth::derive(psk);
  // An eavesdropper on a's path keeps a's authenticated probes and sends them again from its own
  // address, 198.18.0.2:40400.
  auto evil = s.network.open(ep("198.18.0.2", 40400), 0, 0);
  std::vector<std::vector<std::uint8_t>> captured;
  s.network.set_tap(
      [&](const base::Endpoint& from, const base::Endpoint&, std::span<const std::uint8_t> bytes) {
        if (from == ep("192.0.2.10", 40000) && transport::path_auth::parse(bytes) &&
            transport::path_auth::verify(bytes, key) && captured.size() < 50)
          captured.emplace_back(bytes.begin(), bytes.end());
      });
  s.start();
  REQUIRE(s.run_until([&] { return s.all_up(1) && captured.size() >= 5; }, 10.0));
  auto challenges_before = s.b.transport->stats().challenges_out;
  for (const auto& probe : captured) evil->send_now(ep("192.0.2.2"), probe);
  std::size_t to_evil = 0;
  s.run_until(
      [&] {
        evil->receive([&](const base::Endpoint&, std::span<const std::uint8_t>) { ++to_evil; });
        return false;
      },
      0.5);
  auto b = s.b.transport->associations().front();
  REQUIRE(b.paths.size() == 1);
  CHECK(b.paths.front().remote == "192.0.2.10:40000");
  CHECK(s.b.transport->stats().paths_learned == 1);
  CHECK(s.b.transport->stats().path_moves == 0);
  // What goes back to the replaying address: a bounded number of challenges, no SCTP.
  CHECK(to_evil <= 8);
  CHECK(to_evil >= 1);  // the replay was seen: it drew a challenge
  CHECK(s.b.transport->stats().challenges_out - challenges_before == to_evil);
  CHECK(s.a.events.downs.empty());
}

TEST_CASE(
    "usrsctp over the fake network: state-changing chunks with a captured tag from a third "
    "address change nothing") {
  Layout layout;
  layout.pool = 1;
  TwoSites s(11, layout);
  // An eavesdropper on the path keeps one of a's SCTP packets to b (its verification tag is b's)
  // and sends chunks that would end or disturb the association from its own address.
  auto evil = s.network.open(ep("198.18.0.2", 40400), 0, 0);
  std::vector<std::uint8_t> captured;
  s.network.set_tap(
      [&](const base::Endpoint& from, const base::Endpoint&, std::span<const std::uint8_t> bytes) {
        if (from == ep("192.0.2.1") && captured.empty() && bytes.size() >= 16 &&
            !transport::path_auth::parse(bytes) && base::load_be32(bytes.data() + 4) != 0)
          captured.assign(bytes.begin(), bytes.end());
      });
  s.start();
  REQUIRE(s.run_until([&] { return s.all_up(1); }, 10.0));
  REQUIRE(s.run_until([&] { return !captured.empty(); }, 5.0));
  auto forge = [&](std::uint8_t type, std::uint8_t flags, std::vector<std::uint8_t> body) {
    return forge_chunk(captured, type, flags, body);
  };
  const std::vector<std::vector<std::uint8_t>> forged = {
      forge(6, 0, {}),                  // ABORT
      forge(7, 0, {0, 0, 0, 0}),        // SHUTDOWN (cumulative TSN 0)
      forge(14, 0, {}),                 // SHUTDOWN COMPLETE
      forge(9, 0, {0, 1, 0, 4}),        // ERROR (invalid stream identifier)
      forge(0xc0, 0, {0, 0, 0x10, 0}),  // FORWARD TSN
  };
  auto before = s.b.transport->stats();
  for (const auto& p : forged) evil->send_now(ep("192.0.2.2"), p);
  s.run_until([] { return false; }, 0.5);
  CHECK(s.b.events.downs.empty());
  CHECK(s.a.events.downs.empty());
  CHECK(s.b.transport->stats().datagrams_unproven_control - before.datagrams_unproven_control ==
        forged.size());
  // The association still carries messages both ways.
  AssocId a_assoc = *s.a.events.up.begin();
  CHECK(send_until_delivered(s, s.a, s.b, a_assoc, 1, 20, 300));
}

TEST_CASE("usrsctp over the fake network: probes captured, replayed and reflected move nothing") {
  Layout layout;  // a behind a NAT, learned by b from its probes (as above)
  layout.a_locals = {"100.64.0.2"};
  layout.b_remotes = {};
  layout.pool = 1;
  TwoSites s(11, layout);
  s.network.nat(ep("100.64.0.2"), ep("192.0.2.10", 40000));
  const base::Endpoint a_out = ep("192.0.2.10", 40000), b_addr = ep("192.0.2.2"),
                       evil_addr = ep("198.18.0.2", 40400);
  // An eavesdropper sees every authenticated probe between a and b, and whatever reaches its own
  // address (challenges). It sends each of them, once, to both gateways from its own address:
  // replays of each side's probes to the other, reflections of each side's own probes (requests,
  // echoes, challenges) back to it, and the answers these draw, in turn captured and replayed.
  auto evil = s.network.open(evil_addr, 0, 0);
  std::vector<std::vector<std::uint8_t>> captured;
  s.network.set_tap(
      [&](const base::Endpoint& from, const base::Endpoint&, std::span<const std::uint8_t> bytes) {
        if (from != evil_addr && bytes.size() >= 8 && transport::path_auth::parse(bytes) &&
            captured.size() < 4000)
          captured.emplace_back(bytes.begin(), bytes.end());
      });
  s.start();
  REQUIRE(s.run_until([&] { return s.all_up(1) && captured.size() >= 5; }, 10.0));
  std::size_t next = 0;
  s.run_until(
      [&] {
        evil->receive([&](const base::Endpoint&, std::span<const std::uint8_t> bytes) {
          if (captured.size() < 4000) captured.emplace_back(bytes.begin(), bytes.end());
        });
        for (; next < captured.size(); ++next) {
          auto probe = captured[next];  // the vector may grow while sending
          evil->send_now(b_addr, probe);
          evil->send_now(a_out, probe);
        }
        return false;
      },
      3.0);
  INFO("datagrams the eavesdropper captured and sent: " << captured.size());
  auto b = s.b.transport->associations().front();
  REQUIRE(b.paths.size() == 1);
  CHECK(b.paths.front().remote == "192.0.2.10:40000");
  CHECK(s.b.transport->stats().paths_learned == 1);
  CHECK(s.b.transport->stats().path_moves == 0);
  CHECK(s.a.transport->stats().paths_learned == 0);
  CHECK(s.a.transport->stats().path_moves == 0);
  REQUIRE(s.a.transport->associations().front().paths.size() == 1);
  // The genuine path still carries the traffic, both ways.
  CHECK(send_until_delivered(s, s.a, s.b, s.a.transport->associations().front().id, 0, 20, 300));
  CHECK(send_until_delivered(s, s.b, s.a, b.id, 0, 20, 300));
  CHECK(s.a.events.downs.empty());
  CHECK(s.b.events.downs.empty());
}

TEST_CASE(
    "usrsctp over the fake network: data and acknowledgements with a captured tag and TSNs from a "
    "third "
    "address change nothing") {
  // Each forged packet on an association of its own (doctest runs the case once per subcase).
  std::size_t which = 0;
  SUBCASE("DATA without user data") {
    which = 0;
  }
  SUBCASE("a SACK beyond what was sent") {
    which = 1;
  }
  SUBCASE("a gap block beyond what was sent") {
    which = 2;
  }
  SUBCASE("DATA at the TSN a sends next") {
    which = 3;
  }
  Layout layout;
  layout.pool = 1;
  TwoSites s(13, layout);
  // An eavesdropper on the path keeps, from each side, the latest SCTP packet that carries DATA:
  // a's (its verification tag is b's, its TSN a's) and b's (b's TSN).
  auto evil = s.network.open(ep("198.18.0.2", 40400), 0, 0);
  std::vector<std::uint8_t> from_a;
  std::uint32_t a_tsn = 0, b_tsn = 0;
  auto data_tsn = [](std::span<const std::uint8_t> p) -> std::optional<std::uint32_t> {
    for (std::size_t off = 12; off + 8 <= p.size();) {
      std::size_t len = base::load_be16(p.data() + off + 2);
      if (len < 4 || off + len > p.size()) break;
      if (p[off] == 0 && len >= 16) return base::load_be32(p.data() + off + 4);
      off += (len + 3) & ~std::size_t{3};
    }
    return std::nullopt;
  };
  s.network.set_tap(
      [&](const base::Endpoint& from, const base::Endpoint&, std::span<const std::uint8_t> bytes) {
        if (bytes.size() < 16 || transport::path_auth::parse(bytes)) return;
        auto tsn = data_tsn(bytes);
        if (!tsn) return;
        if (from == ep("192.0.2.1")) {
          from_a.assign(bytes.begin(), bytes.end());
          a_tsn = *tsn;
        } else if (from == ep("192.0.2.2")) {
          b_tsn = *tsn;
        }
      });
  s.start();
  REQUIRE(s.run_until([&] { return s.all_up(1); }, 10.0));
  REQUIRE(send_until_delivered(s, s.a, s.b, *s.a.events.up.begin(), 1, 5, 300));
  REQUIRE(send_until_delivered(s, s.b, s.a, *s.b.events.up.begin(), 1, 5, 300));
  REQUIRE(!from_a.empty());
  auto forge = [&](std::uint8_t type, std::uint8_t flags, std::vector<std::uint8_t> body) {
    return forge_chunk(from_a, type, flags, body);
  };
  auto be32 = [](std::uint32_t v) {
    return std::vector<std::uint8_t>{
        static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
        static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
  };
  auto cat = [](std::initializer_list<std::vector<std::uint8_t>> parts) {
    std::vector<std::uint8_t> out;
    for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
    return out;
  };
  const std::vector<std::vector<std::uint8_t>> forged = {
      // DATA without user data, at the TSN b expects next.
      forge(0, 3, cat({be32(a_tsn + 1), {0, 0, 0, 0}, be32(0)})),
      // SACKs acknowledging what b never sent: cumulatively, and in a gap block.
      forge(3, 0, cat({be32(b_tsn + 1000), be32(1 << 20), {0, 0, 0, 0}})),
      forge(3, 0, cat({be32(b_tsn), be32(1 << 20), {0, 1, 0, 0}, {3, 0xe8, 3, 0xe8}})),
      // Well-formed DATA (unordered) at the TSN a sends next: b would acknowledge it to a, which
      // never sent it.
      forge(0, 7, cat({be32(a_tsn + 1), {0, 1, 0, 0}, be32(0), {1, 2, 3, 4, 5, 6, 7, 8}})),
  };
  auto before = s.b.transport->stats();
  evil->send_now(ep("192.0.2.2"), forged.at(which));
  s.run_until([] { return false; }, 0.2);
  CHECK(s.b.events.downs.empty());
  CHECK(s.a.events.downs.empty());
  CHECK(s.b.transport->stats().datagrams_unproven_control - before.datagrams_unproven_control == 1);
  // The association still carries messages both ways.
  auto carries = [&](Site& from, Site& to) {
    AssocId assoc = *from.events.up.begin();
    std::size_t had = to.events.received, sent = 0;
    return s.run_until(
        [&] {
          if (sent < 20 &&
              from.transport->send(assoc, 2, message(static_cast<std::uint32_t>(sent), 300)) ==
                  SendResult::ok)
            ++sent;
          return to.events.received == had + 20;
        },
        10.0);
  };
  CHECK(carries(s.a, s.b));
  CHECK(carries(s.b, s.a));
}
