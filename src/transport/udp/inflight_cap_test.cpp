#include "src/transport/udp/inflight_cap.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <utility>

namespace {

// Feeds a steady flow: `rate` bytes/s acknowledged, RTT `rtt`, sampled every 10 ms for `secs`;
// `limited`: data waits for the cap throughout.
void steady(transport::udp::InflightCap& cap, double& now, std::uint64_t& acked, double rate,
            double rtt, double secs, bool limited = true) {
  for (double end = now + secs; now < end; now += 0.01) {
    acked += static_cast<std::uint64_t>(rate * 0.01);
    cap.sample(now, acked, rtt, limited);
  }
}

}  // namespace

TEST_CASE("inflight cap: gain x delivery rate x lowest RTT, at least min_cap") {
  transport::udp::InflightCap cap;
  CHECK(cap.cap() == 0);  // nothing known: no cap
  double now = 0;
  std::uint64_t acked = 0;
  steady(cap, now, acked, 100e6 / 8, 0.020, 0.12);  // 100 Mbit/s at 20 ms: BDP 250 kB
  CHECK(!cap.full());
  CHECK(cap.cap() == doctest::Approx(2.0 * 12.5e6 * 0.020).epsilon(0.02));
  steady(cap, now, acked, 100e6 / 8, 0.020, 0.2);  // three intervals without growth: full
  CHECK(cap.full());
  steady(cap, now, acked, 100e6 / 8, 0.020, 2.5);
  CHECK(cap.full());
  CHECK(cap.bandwidth() == doctest::Approx(12.5e6).epsilon(0.02));
  CHECK(cap.rtt_min() == doctest::Approx(0.020));
  // Once full: a quarter of rtt_min of queue, but at least 20 ms (at 20 ms, 20 ms).
  CHECK(cap.cap() == doctest::Approx(12.5e6 * (0.020 + 0.020)).epsilon(0.02));
  // A slow flow: the floor.
  transport::udp::InflightCap slow;
  now = 0, acked = 0;
  steady(slow, now, acked, 1e6 / 8, 0.020, 3);
  CHECK(slow.cap() == 256u << 10);
}

TEST_CASE("inflight cap: once full, no more than while filling (a LAN keeps a short queue)") {
  transport::udp::InflightCap cap;
  double now = 0;
  std::uint64_t acked = 0;
  steady(cap, now, acked, 1e9, 0.001, 1);  // 8 Gbit/s at 1 ms: 20 ms of queue would be 20 MB
  CHECK(cap.full());
  CHECK(cap.cap() == doctest::Approx(2.0 * 1e9 * 0.001).epsilon(0.02));
}

TEST_CASE("inflight cap: the highest rate of the window, the lowest RTT of its window") {
  transport::udp::InflightCap cap;
  double now = 0;
  std::uint64_t acked = 0;
  steady(cap, now, acked, 50e6, 0.020, 1);
  steady(cap, now, acked, 10e6, 0.030, 1);  // slower, longer (our own queue): both remembered
  CHECK(cap.bandwidth() == doctest::Approx(50e6).epsilon(0.05));
  CHECK(cap.rtt_min() == doctest::Approx(0.020));
  steady(cap, now, acked, 10e6, 0.030, 3);  // the 50 MB/s samples are older than 2 s
  CHECK(cap.bandwidth() == doctest::Approx(10e6).epsilon(0.05));
  CHECK(cap.rtt_min() == doctest::Approx(0.020));  // 10 s window
  steady(cap, now, acked, 10e6, 0.030, 8);
  CHECK(cap.rtt_min() == doctest::Approx(0.030));
}

TEST_CASE("inflight cap: an RTT beyond what the cap explains raises rtt_min within a second") {
  transport::udp::InflightCap cap;
  double now = 0;
  std::uint64_t acked = 0;
  steady(cap, now, acked, 10e6, 0.002, 2);  // a LAN
  CHECK(cap.rtt_min() == doctest::Approx(0.002));
  steady(cap, now, acked, 10e6, 0.005, 2);  // 2.5 x (gain + 0.5): could be our queue
  CHECK(cap.rtt_min() == doctest::Approx(0.002));
  steady(cap, now, acked, 10e6, 0.040, 0.5);  // the path became a WAN
  CHECK(cap.rtt_min() == doctest::Approx(0.002));
  steady(cap, now, acked, 10e6, 0.040, 0.6);
  CHECK(cap.rtt_min() == doctest::Approx(0.040));
  CHECK(!cap.full());  // a longer path: filled afresh
  CHECK(cap.cap() == doctest::Approx(2.0 * 10e6 * 0.040).epsilon(0.05));
}

TEST_CASE("inflight cap: a new association counts its bytes afresh") {
  transport::udp::InflightCap cap;
  double now = 0;
  std::uint64_t acked = 0;
  steady(cap, now, acked, 10e6, 0.020, 2);
  acked = 0;  // the association was re-established
  steady(cap, now, acked, 10e6, 0.020, 3);
  CHECK(cap.bandwidth() == doctest::Approx(10e6).epsilon(0.05));
}

namespace {

// A window-limited flow whose delivery rate follows the cap (rate = cap / rtt) up to the path's
// `bottleneck` bytes/s: what SCTP behind the cap does.
void fill(transport::udp::InflightCap& cap, double& now, std::uint64_t& acked, double bottleneck,
          double rtt, double secs, bool limited = true) {
  for (double end = now + secs; now < end; now += 0.01) {
    double rate = cap.cap() ? std::min(bottleneck, cap.cap() / rtt) : 256e3 / rtt;
    acked += static_cast<std::uint64_t>(rate * 0.01);
    cap.sample(now, acked, rtt, limited);
  }
}

}  // namespace

TEST_CASE("inflight cap: doubles per RTT until the pipe is full, then a quarter above it") {
  transport::udp::InflightCap cap;
  double now = 0;
  std::uint64_t acked = 0;
  // 1 Gbit/s at 100 ms: BDP 12.5 MB. From the 256 KiB floor, doubling per 0.1 s interval.
  fill(cap, now, acked, 125e6, 0.100, 0.45);
  CHECK(!cap.full());
  CHECK(cap.cap() > 2u << 20);
  fill(cap, now, acked, 125e6, 0.100, 3);
  CHECK(cap.full());
  CHECK(cap.bandwidth() == doctest::Approx(125e6).epsilon(0.02));
  CHECK(cap.cap() == doctest::Approx(1.25 * 125e6 * 0.100).epsilon(0.02));
  // More gets through (a competing flow left): the cap grows by a quarter per interval, to the
  // new pipe within 2 s.
  fill(cap, now, acked, 250e6, 0.100, 0.2);
  CHECK(cap.cap() < 1.3 * 1.25 * 125e6 * 0.100);
  fill(cap, now, acked, 250e6, 0.100, 4);
  CHECK(cap.full());
  CHECK(cap.cap() == doctest::Approx(1.25 * 250e6 * 0.100).epsilon(0.02));
}

TEST_CASE("inflight cap: intervals where the senders set the rate do not make the pipe full") {
  transport::udp::InflightCap cap;
  double now = 0;
  std::uint64_t acked = 0;
  steady(cap, now, acked, 10e6, 0.020, 0.1);
  steady(cap, now, acked, 10e6, 0.020, 5, false);  // application-limited: nothing waits
  CHECK(!cap.full());
  CHECK(cap.cap() == std::max<std::uint64_t>(256u << 10, 2.0 * 10e6 * 0.020));
}

TEST_CASE("inflight cap: a pipe found full at a trickle is filled again at gain 2") {
  transport::udp::InflightCap cap;
  double now = 0;
  std::uint64_t acked = 0;
  steady(cap, now, acked, 2e6, 0.100, 3);  // acknowledgements only, now and then waiting
  CHECK(cap.full());
  fill(cap, now, acked, 125e6, 0.100, 0.9);  // then a bulk transfer
  CHECK(!cap.full());
  fill(cap, now, acked, 125e6, 0.100, 3);
  CHECK(cap.full());
  CHECK(cap.cap() == doctest::Approx(1.25 * 125e6 * 0.100).epsilon(0.02));
}

namespace {

// SCTP's slow start behind the cap over a path of `rtt` seconds and a bottleneck of `bottleneck`
// bytes/s: the window grows by what is acknowledged (doubles per RTT) up to the cap, the
// bottleneck's queue delays, acknowledgements come back one RTT after the bottleneck sent the
// data. Returns the seconds until the bottleneck is busy (90 % of a 100 ms interval).
double slow_start(transport::udp::InflightCap* cap, double bottleneck, double rtt) {
  constexpr double step = 0.001;
  double cwnd = 4 * 1452, sent = 0, acked = 0, queued = 0;
  std::deque<std::pair<double, double>> returning;  // (when, bytes)
  std::deque<double> busy;                          // bytes served per step, last 100 ms
  double busy_sum = 0;
  for (int i = 0; i < 10000; ++i) {
    double now = i * step;
    while (!returning.empty() && returning.front().first <= now) {
      acked += returning.front().second;
      cwnd += returning.front().second;
      returning.pop_front();
    }
    if (cap && i % 10 == 0)  // the transport samples every 10 ms
      cap->sample(now, static_cast<std::uint64_t>(acked), rtt + queued / bottleneck, true);
    double window = cap && cap->cap() ? std::min<double>(cwnd, cap->cap()) : cwnd;
    double send = std::max(0.0, window - (sent - acked));
    sent += send, queued += send;
    double served = std::min(queued, bottleneck * step);
    queued -= served;
    returning.push_back({now + rtt, served});
    busy.push_back(served), busy_sum += served;
    if (busy.size() > 100) busy_sum -= busy.front(), busy.pop_front();
    if (busy_sum >= 0.9 * bottleneck * 0.1) return now;
  }
  return 10;  // never
}

}  // namespace

TEST_CASE("inflight cap: slow start behind the cap is about as fast as without it") {
  for (double rtt : {0.020, 0.100, 0.200}) {
    CAPTURE(rtt);
    double bottleneck = 250e6 / 8;
    transport::udp::InflightCap cap;
    double free = slow_start(nullptr, bottleneck, rtt);
    double capped = slow_start(&cap, bottleneck, rtt);
    // 1.2-1.5 RTTs later than without a cap (the cap follows the rate of the last RTT); with
    // rates measured over intervals of one RTT 2.2-4 RTTs, over two RTTs 5 at 100 and 200 ms.
    CHECK(capped <= free + 2 * rtt);
  }
}

TEST_CASE(
    "inflight cap: window-limited only when data waits behind a flight that fills the window") {
  using transport::udp::SendState;
  // A bulk transfer: 2 MB in flight (1400 chunks of 1452 bytes), 1 MB more waiting.
  CHECK(transport::udp::window_limited(SendState{3u << 20, 1400, 1452, 2u << 20}, 0));
  CHECK(transport::udp::window_limited(SendState{3u << 20, 1400, 1452, 8u << 20},
                                       2u << 20));  // the cap
  // The senders behind the TUN send less than the window allows: all of it is in flight.
  CHECK(!transport::udp::window_limited(SendState{1u << 20, 800, 1452, 4u << 20}, 0));
  // A trickle (acknowledgements of flows in the other direction), one chunk waiting for a moment.
  CHECK(!transport::udp::window_limited(SendState{40 * 1500, 20, 1452, 4u << 20}, 0));
  // Data waits, but the window is far from full: not the window.
  CHECK(!transport::udp::window_limited(SendState{2u << 20, 100, 1452, 4u << 20}, 0));
  CHECK(!transport::udp::window_limited(SendState{}, 0));
}
