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
    if (!ready(now)) return false;
    note(now);
    return true;
  }

  // The two halves of allow(), for a caller that decides only after further checks: whether
  // allow(now) would return true, and remembering now as the last time.
  bool ready(double now) const { return last_ < 0 || now - last_ >= interval_; }
  void note(double now) { last_ = now; }

 private:
  double interval_;
  double last_ = -1;  // when allow() last returned true; negative: never
};

}  // namespace base
