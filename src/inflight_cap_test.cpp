#include "src/inflight_cap.hpp"

#include <doctest/doctest.h>

#include <cstdint>

namespace {

// Feeds a steady flow: `rate` bytes/s acknowledged, RTT `rtt`, sampled every 10 ms for `secs`;
// `limited`: data waits for the cap throughout.
void steady(transport::InflightCap& cap, double& now, std::uint64_t& acked, double rate, double rtt,
            double secs, bool limited = true) {
  for (double end = now + secs; now < end; now += 0.01) {
    acked += static_cast<std::uint64_t>(rate * 0.01);
    cap.sample(now, acked, rtt, limited);
  }
}

}  // namespace

TEST_CASE("inflight cap: gain x delivery rate x lowest RTT, at least min_cap") {
  transport::InflightCap cap;
  CHECK(cap.cap() == 0);  // nothing known: no cap
  double now = 0;
  std::uint64_t acked = 0;
  steady(cap, now, acked, 100e6 / 8, 0.020, 0.5);  // 100 Mbit/s at 20 ms: BDP 250 kB
  CHECK(!cap.full());
  CHECK(cap.cap() == doctest::Approx(2.0 * 12.5e6 * 0.020).epsilon(0.02));
  steady(cap, now, acked, 100e6 / 8, 0.020, 2.5);  // three intervals without growth: full
  CHECK(cap.full());
  CHECK(cap.bandwidth() == doctest::Approx(12.5e6).epsilon(0.02));
  CHECK(cap.rtt_min() == doctest::Approx(0.020));
  CHECK(cap.cap() == doctest::Approx(1.25 * 12.5e6 * 0.020).epsilon(0.02));
  // A slow flow: the floor.
  transport::InflightCap slow;
  now = 0, acked = 0;
  steady(slow, now, acked, 1e6 / 8, 0.020, 3);
  CHECK(slow.cap() == 256u << 10);
}

TEST_CASE("inflight cap: the highest rate of the window, the lowest RTT of its window") {
  transport::InflightCap cap;
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
  transport::InflightCap cap;
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
  transport::InflightCap cap;
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
void fill(transport::InflightCap& cap, double& now, std::uint64_t& acked, double bottleneck,
          double rtt, double secs, bool limited = true) {
  for (double end = now + secs; now < end; now += 0.01) {
    double rate = cap.cap() ? std::min(bottleneck, cap.cap() / rtt) : 256e3 / rtt;
    acked += static_cast<std::uint64_t>(rate * 0.01);
    cap.sample(now, acked, rtt, limited);
  }
}

}  // namespace

TEST_CASE("inflight cap: doubles per interval until the pipe is full, then a quarter above it") {
  transport::InflightCap cap;
  double now = 0;
  std::uint64_t acked = 0;
  // 1 Gbit/s at 100 ms: BDP 12.5 MB. From the 256 KiB floor, doubling per 0.2 s interval.
  fill(cap, now, acked, 125e6, 0.100, 1.5);
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
  transport::InflightCap cap;
  double now = 0;
  std::uint64_t acked = 0;
  steady(cap, now, acked, 10e6, 0.020, 0.1);
  steady(cap, now, acked, 10e6, 0.020, 5, false);  // application-limited: nothing waits
  CHECK(!cap.full());
  CHECK(cap.cap() == std::max<std::uint64_t>(256u << 10, 2.0 * 10e6 * 0.020));
}

TEST_CASE("inflight cap: a pipe found full at a trickle is filled again at gain 2") {
  transport::InflightCap cap;
  double now = 0;
  std::uint64_t acked = 0;
  steady(cap, now, acked, 2e6, 0.100, 3);  // acknowledgements only, now and then waiting
  CHECK(cap.full());
  fill(cap, now, acked, 125e6, 0.100, 1.5);  // then a bulk transfer
  CHECK(!cap.full());
  fill(cap, now, acked, 125e6, 0.100, 3);
  CHECK(cap.full());
  CHECK(cap.cap() == doctest::Approx(1.25 * 125e6 * 0.100).epsilon(0.02));
}
