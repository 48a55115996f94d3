#pragma once
// base::RateLimit: lets something (typically a log line) happen at most once per interval.
// The caller passes the time (e.g. EventLoop::now()), so tests need no clock.

namespace base {

class RateLimit {
 public:
  explicit constexpr RateLimit(double interval_seconds) : interval_(interval_seconds) {}

  // True, and remembers now, the first time and whenever interval seconds have passed since the
  // last time it returned true; false otherwise. Times are those of one clock (negative times
  // are not expected).
  bool allow(double now) {
    if (last_ >= 0 && now - last_ < interval_) return false;
    last_ = now;
    return true;
  }

 private:
  double interval_;
  double last_ = -1;  // when allow() last returned true; negative: never
};

}  // namespace base
