#include "src/base/rate_limit.hpp"

#include <doctest/doctest.h>

TEST_CASE("RateLimit: the first time, then once per interval") {
  base::RateLimit limit(10.0);
  CHECK(limit.allow(0.0));
  CHECK_FALSE(limit.allow(0.0));
  CHECK_FALSE(limit.allow(9.999));
  CHECK(limit.allow(10.0));
  CHECK_FALSE(limit.allow(15.0));
  CHECK(limit.allow(25.0));  // the interval counts from the last allowed time, not a grid
  CHECK_FALSE(limit.allow(34.0));
  CHECK(limit.allow(100.0));
}

TEST_CASE("RateLimit: ready() looks without taking, note() takes") {
  base::RateLimit limit(30.0);
  CHECK(limit.ready(1.0));
  CHECK(limit.ready(2.0));  // nothing noted yet
  limit.note(2.0);
  CHECK_FALSE(limit.ready(31.0));
  CHECK_FALSE(limit.allow(31.0));
  CHECK(limit.ready(32.0));
  CHECK(limit.allow(32.0));
}

TEST_CASE("RateLimit: independent limiters, other intervals") {
  base::RateLimit a(30.0), b(1.0);
  CHECK(a.allow(5.0));
  CHECK(b.allow(5.0));
  CHECK(b.allow(6.0));
  CHECK_FALSE(a.allow(6.0));
  CHECK(a.allow(35.0));
}

TEST_CASE("RateLimit: a burst of several within one interval") {
  base::RateLimit limit(10.0, 3);
  CHECK(limit.allow(0.0));
  CHECK(limit.allow(1.0));
  CHECK(limit.allow(2.0));
  CHECK_FALSE(limit.allow(3.0));
  CHECK_FALSE(limit.allow(9.999));
  CHECK(limit.allow(10.0));  // ten seconds after the first of the three
  CHECK_FALSE(limit.allow(10.5));
  CHECK(limit.allow(11.0));
  CHECK(limit.allow(12.0));
  CHECK_FALSE(limit.allow(19.0));
  int allowed = 0;
  for (int i = 0; i < 1000; ++i) allowed += limit.allow(100.0 + i * 0.01);
  CHECK(allowed == 3);                        // 1000 attempts within ten seconds
  CHECK(base::RateLimit(1.0, 0).allow(0.0));  // clamped to one
}
