#pragma once
// base::RateLimit: lets something (typically a log line) happen at most `burst` times per
// interval (once, by default). The caller passes the time (e.g. EventLoop::now()), so tests need
// no clock.

#include <array>
#include <cstddef>

namespace base {

class RateLimit {
 public:
  static constexpr std::size_t kMaxBurst = 8;

  // burst: 1 to kMaxBurst (clamped), how many times may happen within any one interval.
  explicit constexpr RateLimit(double interval_seconds, std::size_t burst = 1)
      : interval_(interval_seconds),
        burst_(burst < 1           ? 1
               : burst > kMaxBurst ? kMaxBurst
                                   : burst) {
    for (double& t : last_) t = -1;
  }

  // True, and remembers now, the first `burst` times and whenever interval seconds have passed
  // since the burst-th last time it returned true; false otherwise. Times are those of one clock
  // (negative times are not expected).
  bool allow(double now) {
    if (!ready(now)) return false;
    note(now);
    return true;
  }

  // The two halves of allow(), for a caller that decides only after further checks: whether
  // allow(now) would return true, and remembering now as the last time.
  bool ready(double now) const { return last_[next_] < 0 || now - last_[next_] >= interval_; }
  void note(double now) {
    last_[next_] = now;
    next_ = (next_ + 1) % burst_;
  }

 private:
  double interval_;
  std::size_t burst_;
  // The times allow() returned true, the oldest of the last `burst` at next_ (negative: never).
  std::array<double, kMaxBurst> last_{};
  std::size_t next_ = 0;
};

}  // namespace base
