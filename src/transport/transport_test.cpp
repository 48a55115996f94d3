#include "src/transport/transport.hpp"

#include <doctest/doctest.h>

using transport::SendLoad;

TEST_CASE("send load: drains a window per RTT, bounded by what it delivered lately") {
  SendLoad l;
  l.window = 146'000;  // a new association's first window
  l.srtt = 0.01;
  // Not measured: the window per RTT.
  CHECK(l.drain_rate() == doctest::Approx(14.6e6));
  // A slow path (2.5 MB/s): a quarter more than that, however large the window.
  l.delivery_rate = 2.5e6;
  CHECK(l.drain_rate() == doctest::Approx(1.25 * 2.5e6));
  // Idle (nothing delivered lately): the unearned window per RTT, not nothing.
  l.delivery_rate = 0;
  CHECK(l.drain_rate() == doctest::Approx(SendLoad::kUnearnedWindow / 0.01));
  // Delivering more than the window allows: the window.
  l.delivery_rate = 100e6;
  CHECK(l.drain_rate() == doctest::Approx(14.6e6));
  // The time it holds a packet back by its window alone, whatever it delivered.
  l.queued = 71'600;
  l.delivery_rate = 0;
  CHECK(l.window_time(1400) == doctest::Approx(73'000 * 0.01 / 146'000));
}

TEST_CASE(
    "send load: a packet arrives once what is queued ahead of it drained, half an RTT later") {
  SendLoad fast, slow;
  fast.window = slow.window = 146'000;
  fast.srtt = slow.srtt = 0.02;
  fast.delivery_rate = 12.5e6;
  slow.delivery_rate = 2.5e6;
  fast.queued = 200'000;
  slow.queued = 40'000;
  // fast: 201.4 kB at 146 kB / 20 ms (the window binds); slow: 41.4 kB at 3.125 MB/s.
  CHECK(fast.arrival(1400) == doctest::Approx(201'400 / 7.3e6 + 0.01));
  CHECK(slow.arrival(1400) == doctest::Approx(41'400 / 3.125e6 + 0.01));
  // With equal windows and RTTs only the delivery rates tell them apart: 100 kB queued on the
  // slow path look quicker than 200 kB on the fast one by the windows alone, and are not.
  slow.queued = 100'000;
  CHECK(slow.arrival(1400) > fast.arrival(1400));
  slow.delivery_rate = fast.delivery_rate = -1;
  CHECK(slow.arrival(1400) < fast.arrival(1400));
}
