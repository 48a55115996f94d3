#include "src/inflight_cap.hpp"

#include <doctest/doctest.h>

#include <cstdint>

namespace {

// Feeds a steady flow: `rate` bytes/s acknowledged, RTT `rtt`, sampled every 10 ms for `secs`.
void steady(transport::InflightCap& cap, double& now, std::uint64_t& acked, double rate, double rtt,
            double secs) {
  for (double end = now + secs; now < end; now += 0.01) {
    acked += static_cast<std::uint64_t>(rate * 0.01);
    cap.sample(now, acked, rtt);
  }
}

}  // namespace

TEST_CASE("inflight cap: gain x delivery rate x lowest RTT, at least min_cap") {
  transport::InflightCap cap;
  CHECK(cap.cap() == 0);  // nothing known: no cap
  double now = 0;
  std::uint64_t acked = 0;
  steady(cap, now, acked, 100e6 / 8, 0.020, 3);  // 100 Mbit/s at 20 ms: BDP 250 kB
  CHECK(cap.bandwidth() == doctest::Approx(12.5e6).epsilon(0.02));
  CHECK(cap.rtt_min() == doctest::Approx(0.020));
  CHECK(cap.cap() == doctest::Approx(2.0 * 12.5e6 * 0.020).epsilon(0.02));
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
