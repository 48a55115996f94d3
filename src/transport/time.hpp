#pragma once
// Time: a point on the transports' one clock for association bookkeeping (hold-off, reconnect
// decisions), the steady clock, in seconds. A strong type: made explicitly from seconds (tests run
// the pool under fake time) or read with Time::now() by a backend. The pool (assoc_pool.hpp) never
// reads a clock; it is handed the time. Durations are plain seconds (double), as the backoff and
// the event loop's timers take them.

#include <chrono>
#include <compare>

namespace transport {

class Time {
 public:
  constexpr Time() = default;
  constexpr explicit Time(double seconds) : seconds_(seconds) {}

  // The steady clock, now (microsecond resolution or better).
  static Time now() {
    using Seconds = std::chrono::duration<double>;
    return Time(Seconds(std::chrono::steady_clock::now().time_since_epoch()).count());
  }

  constexpr double seconds() const { return seconds_; }
  constexpr Time operator+(double seconds) const { return Time(seconds_ + seconds); }
  // The seconds from other to this (negative when other is later).
  constexpr double operator-(Time other) const { return seconds_ - other.seconds_; }
  constexpr auto operator<=>(const Time&) const = default;

 private:
  double seconds_ = 0;
};

}  // namespace transport
