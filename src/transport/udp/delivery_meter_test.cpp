#include "src/transport/udp/delivery_meter.hpp"

#include <doctest/doctest.h>

using transport::udp::DeliveryMeter;

TEST_CASE("delivery meter: the rate over the last span, from the cumulative bytes acknowledged") {
  DeliveryMeter m;
  CHECK(m.rate(0.02) == 0);
  m.sample(0, 0);
  CHECK(m.rate(0.02) == 0);  // one sample: nothing to compare with
  // 1 MB/s for 0.3 s, then 4 MB/s for 0.1 s, sampled every 10 ms.
  std::uint64_t acked = 0;
  double t = 0;
  for (int i = 1; i <= 30; ++i) m.sample(t = i * 0.01, acked += 10'000);
  CHECK(m.rate(0.05) == doctest::Approx(1e6));
  for (int i = 31; i <= 40; ++i) m.sample(t = i * 0.01, acked += 40'000);
  CHECK(m.rate(0.05) == doctest::Approx(4e6));
  CHECK(m.rate(0.2) == doctest::Approx((100'000 + 400'000) / 0.2));
  // A span longer than the samples kept: over all of them (0.63 s at most).
  for (int i = 41; i <= 200; ++i) m.sample(t = i * 0.01, acked += 10'000);
  CHECK(m.rate(5.0) == doctest::Approx(1e6));
  // Idle: nothing acknowledged lately.
  for (int i = 201; i <= 210; ++i) m.sample(t = i * 0.01, acked);
  CHECK(m.rate(0.05) == 0);
  CHECK(m.rate(0.15) == doctest::Approx(50'000 / 0.15));
}

TEST_CASE("delivery meter: a counter that went back (a new association) starts afresh") {
  DeliveryMeter m;
  for (int i = 0; i <= 10; ++i) m.sample(i * 0.01, 1'000'000 + i * 10'000u);
  CHECK(m.rate(0.05) == doctest::Approx(1e6));
  m.sample(0.11, 0);
  CHECK(m.rate(0.05) == 0);
  m.sample(0.12, 20'000);
  CHECK(m.rate(0.05) == doctest::Approx(2e6));
}
