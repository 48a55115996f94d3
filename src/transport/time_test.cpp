#include "src/transport/time.hpp"

#include <doctest/doctest.h>

using transport::Time;

TEST_CASE("time: made from seconds, ordered, and the steady clock does not go back") {
  Time a(1.5), b = a + 0.25;
  CHECK(b.seconds() == doctest::Approx(1.75));
  CHECK(b - a == doctest::Approx(0.25));
  CHECK(a - b == doctest::Approx(-0.25));
  CHECK(a < b);
  CHECK(Time() == Time(0));
  Time t1 = Time::now(), t2 = Time::now();
  CHECK(t1 <= t2);
  CHECK(t1 > Time(0));
}
