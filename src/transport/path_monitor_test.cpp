#include "src/transport/path_monitor.hpp"

#include <doctest/doctest.h>

using transport::PathMonitor;
using transport::PathMonitorOptions;
using transport::PathState;

namespace {

PathMonitorOptions opts() {
  PathMonitorOptions o;
  o.probe_interval = 0.1;
  o.failover = 0.3;
  o.hold = 1.0;
  o.loss_window = 10;
  return o;
}

// One probe round at time t on every path in `answer` (echo after rtt), others unanswered.
void round(PathMonitor& m, double t, std::initializer_list<std::size_t> answer, double rtt = 0.01) {
  for (std::size_t i = 0; i < m.size(); ++i) {
    std::uint32_t seq = m.probe_sent(i, t);
    for (std::size_t a : answer) {
      if (a == i) CHECK(m.echo_received(i, seq, t + rtt));
    }
  }
  m.update(t + rtt);
}

}  // namespace

TEST_CASE("path monitor: unknown until the first echo, up, down after the failover time") {
  PathMonitor m(2, opts(), 0);
  CHECK(m.path(0).state == PathState::unknown);
  CHECK(m.primary() == 0);
  std::uint32_t s0 = m.probe_sent(0, 0.0);
  m.probe_sent(1, 0.0);
  CHECK(m.echo_received(0, s0, 0.02));
  CHECK_FALSE(m.echo_received(0, s0, 0.03));   // duplicate
  CHECK_FALSE(m.echo_received(0, 999, 0.03));  // never sent
  CHECK(m.path(0).state == PathState::up);
  CHECK(m.path(0).srtt == doctest::Approx(0.02));
  CHECK_FALSE(m.update(0.1));
  CHECK(m.path(1).state == PathState::unknown);
  m.update(0.31);
  CHECK(m.path(1).state == PathState::down);  // never answered within the failover time
  CHECK(m.path(0).state == PathState::up);
  m.update(0.02 + 0.29);
  CHECK(m.path(0).state == PathState::up);
  m.update(0.02 + 0.3);
  CHECK(m.path(0).state == PathState::down);
}

TEST_CASE("path monitor: failover at once, failback only after the hold time") {
  PathMonitor m(2, opts(), 0);
  double t = 0;
  for (int k = 0; k < 10; ++k, t = k * 0.1) round(m, t, {0, 1});
  CHECK(m.primary() == 0);
  CHECK(m.path(1).state == PathState::up);
  // Path 0 stops answering at t = 1.0; its last echo came at 0.91.
  bool changed = false;
  double switched_at = 0;
  for (int k = 10; k < 20; ++k) {
    t = k * 0.1;
    for (std::size_t i = 0; i < 2; ++i) {
      std::uint32_t seq = m.probe_sent(i, t);
      if (i == 1) m.echo_received(1, seq, t + 0.01);
    }
    for (double u = t; u < t + 0.1; u += 0.01) {
      if (!changed && m.update(u)) {
        changed = true;
        switched_at = u;
      }
    }
  }
  REQUIRE(changed);
  CHECK(m.primary() == 1);
  CHECK(m.previous_primary() == 0);
  CHECK(switched_at >= 0.91 + 0.3 - 1e-9);
  CHECK(switched_at <= 0.91 + 0.3 + 0.011);
  CHECK(m.path(0).state == PathState::down);
  // Path 0 comes back at t = 2.0: up at once, primary again only after being up for 1 s.
  double back = 0;
  for (int k = 20; k < 40; ++k) {
    t = k * 0.1;
    for (std::size_t i = 0; i < 2; ++i) {
      std::uint32_t seq = m.probe_sent(i, t);
      m.echo_received(i, seq, t + 0.01);
    }
    if (m.update(t + 0.01) && back == 0) back = t + 0.01;
    if (t < 2.95) CHECK(m.primary() == 1);
  }
  CHECK(m.path(0).state == PathState::up);
  CHECK(m.primary() == 0);
  CHECK(back >= 2.01 + 1.0 - 1e-9);
  CHECK(back <= 2.01 + 1.0 + 0.1 + 1e-9);
  CHECK(m.changes() == 2);
}

TEST_CASE("path monitor: a flapping better path never gets the traffic back") {
  PathMonitor m(2, opts(), 0);
  double t = 0;
  for (; t < 0.5; t += 0.1) round(m, t, {1});
  m.update(t);
  CHECK(m.primary() == 1);
  // Path 0 answers for 0.5 s, then is silent for 0.5 s, repeatedly: never up for the hold time.
  for (int cycle = 0; cycle < 5; ++cycle) {
    for (int k = 0; k < 5; ++k, t += 0.1) round(m, t, {0, 1});
    for (int k = 0; k < 5; ++k, t += 0.1) round(m, t, {1});
    CHECK(m.primary() == 1);
  }
}

TEST_CASE("path monitor: nothing up keeps the primary; a local send failure is down at once") {
  PathMonitor m(3, opts(), 0);
  for (double t = 0; t < 1.0; t += 0.1) round(m, t, {});
  CHECK(m.primary() == 0);
  CHECK(m.path(0).state == PathState::down);
  round(m, 1.0, {2});
  CHECK(m.primary() == 2);  // the only live path, though last in order
  round(m, 1.1, {1, 2});
  CHECK(m.primary() == 1);  // new since the time with no path up: settled at once, and better
  m.send_failed(1, 1.15);
  CHECK(m.path(1).state == PathState::down);
  CHECK(m.update(1.15));
  CHECK(m.primary() == 2);  // failover needs no hold
}

TEST_CASE(
    "path monitor: at start the primary waits for its first echo, not for whoever answers first") {
  PathMonitor m(2, opts(), 0);
  // Path 1 answers first; path 0 is still unknown: no failover to path 1.
  std::uint32_t s0 = m.probe_sent(0, 0.0), s1 = m.probe_sent(1, 0.0);
  CHECK(m.echo_received(1, s1, 0.01));
  CHECK_FALSE(m.update(0.01));
  CHECK(m.primary() == 0);
  CHECK(m.echo_received(0, s0, 0.05));
  CHECK_FALSE(m.update(0.05));
  CHECK(m.primary() == 0);
  CHECK(m.changes() == 0);

  // A primary that never answers moves once it is judged down (the failover time), not before.
  PathMonitor n(2, opts(), 0);
  for (double t = 0; t < 0.25; t += 0.1) round(n, t, {1});
  CHECK(n.primary() == 0);
  round(n, 0.3, {1});
  CHECK(n.path(0).state == PathState::down);
  CHECK(n.primary() == 1);
}

TEST_CASE(
    "path monitor: a path up for the first time is settled at once, one that came back after the "
    "hold") {
  PathMonitor m(2, opts(), 0);
  CHECK_FALSE(m.settled(0, 0));  // unknown
  round(m, 0.0, {0, 1});
  CHECK(m.settled(0, 0.01));
  CHECK(m.settled(1, 0.01));
  // Path 1 goes down and comes back: settled only once up for the hold time.
  for (double t = 0.1; t < 0.55; t += 0.1) round(m, t, {0});
  CHECK(m.path(1).state == PathState::down);
  CHECK_FALSE(m.settled(1, 0.5));
  round(m, 0.6, {0, 1});
  CHECK(m.path(1).state == PathState::up);
  CHECK_FALSE(m.settled(1, 0.61 + 0.99));
  CHECK(m.settled(1, 0.62 + 1.0));

  // A path that was down at start and then answers for the first time came back: the hold
  // applies before it takes the traffic back.
  PathMonitor n(2, opts(), 0);
  for (double t = 0; t < 0.35; t += 0.1) round(n, t, {1});
  CHECK(n.primary() == 1);
  round(n, 0.4, {0, 1});
  CHECK(n.path(0).state == PathState::up);
  CHECK(n.primary() == 1);
  CHECK_FALSE(n.settled(0, 0.41));
}

TEST_CASE("path monitor: a peer that answers late (starting up) finds every path new") {
  PathMonitor m(2, opts(), 0);
  for (double t = 0; t < 0.65; t += 0.1) round(m, t, {});
  CHECK(m.path(0).state == PathState::down);
  CHECK(m.path(1).state == PathState::down);
  // The peer is up: path 1 happens to answer first (failover there), path 0 just after. Neither
  // was down while another was up: path 0 is settled at once and gets the traffic back.
  std::uint32_t s0 = m.probe_sent(0, 0.7), s1 = m.probe_sent(1, 0.7);
  CHECK(m.echo_received(1, s1, 0.71));
  CHECK(m.update(0.71));
  CHECK(m.primary() == 1);
  CHECK(m.echo_received(0, s0, 0.72));
  CHECK(m.settled(0, 0.72));
  CHECK(m.update(0.72));
  CHECK(m.primary() == 0);
  // Path 1 fails while path 0 is up: when it comes back, it waits the hold.
  for (double t = 0.8; t < 1.25; t += 0.1) round(m, t, {0});
  CHECK(m.path(1).state == PathState::down);
  round(m, 1.3, {0, 1});
  CHECK(m.path(1).state == PathState::up);
  CHECK_FALSE(m.settled(1, 1.31));
}

TEST_CASE("path monitor: loss is the unanswered fraction of the last probes") {
  PathMonitor m(1, opts(), 0);
  double t = 0;
  for (int i = 0; i < 10; ++i, t += 0.1) {
    std::uint32_t seq = m.probe_sent(0, t);
    if (i % 4 != 0) m.echo_received(0, seq, t + 0.01);  // i = 0, 4, 8 lost
  }
  // i = 8 was sent at 0.8: counted as lost once it is older than the failover time.
  CHECK(m.loss(0, 1.0) == doctest::Approx(2.0 / 9.0));
  CHECK(m.loss(0, 1.2) == doctest::Approx(0.3));
  // A new probe replaces the oldest (i = 0, lost); while fresh and unanswered it does not count.
  m.probe_sent(0, 1.2);
  CHECK(m.loss(0, 1.25) == doctest::Approx(2.0 / 9.0));
  CHECK(m.loss(0, 1.5) == doctest::Approx(3.0 / 10.0));
}

TEST_CASE("path monitor: smoothed RTT") {
  PathMonitor m(1, opts(), 0);
  std::uint32_t s = m.probe_sent(0, 0);
  m.echo_received(0, s, 0.1);
  CHECK(m.path(0).srtt == doctest::Approx(0.1));
  s = m.probe_sent(0, 1);
  m.echo_received(0, s, 1.02);
  CHECK(m.path(0).srtt == doctest::Approx(0.875 * 0.1 + 0.125 * 0.02));
}

TEST_CASE(
    "path monitor: a learned path is appended, confirmed up, and takes over from a dead primary") {
  PathMonitor m(1, opts(), 0);
  // The configured path never answers: down after the failover time.
  round(m, 0.0, {});
  round(m, 0.4, {});
  CHECK(m.path(0).state == PathState::down);
  std::size_t learned = m.add_path(0.5);
  CHECK(learned == 1);
  CHECK(m.size() == 2);
  CHECK(m.path(1).state == PathState::unknown);
  m.confirm(1, 0.5);
  CHECK(m.path(1).state == PathState::up);
  CHECK(m.update(0.5));
  CHECK(m.primary() == 1);
  // Confirmed, not probed: it still goes down when nothing answers afterwards.
  m.update(0.9);
  CHECK(m.path(1).state == PathState::down);
  // An echo of a probe sent before confirm() does not count (the address changed since).
  PathMonitor n(1, opts(), 0);
  std::uint32_t old_seq = n.probe_sent(0, 0.0);
  n.confirm(0, 0.1);
  CHECK_FALSE(n.echo_received(0, old_seq, 0.2));
}
