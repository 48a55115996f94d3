#pragma once
// DeliveryMeter: how fast an association got its data acknowledged lately (pure logic, time
// passed in). Fed the cumulative bytes acknowledged at each window tick (every 10 ms,
// usrsctp_window.cpp); rate(span) is what was acknowledged over about the last `span`
// seconds, per second. It tells the striping scheduler (transport::SendLoad) what a path has
// shown it can carry, where SCTP's congestion window only says what it may send: a new
// association's first window, or one that idled, is far above what a slow path delivers.

#include <array>
#include <cstddef>
#include <cstdint>

namespace transport::udp {

class DeliveryMeter {
 public:
  static constexpr std::size_t kSamples = 64;  // at 10 ms ticks: the last 0.64 s

  // acked: bytes acknowledged in all so far (never going back; a smaller value starts afresh).
  void sample(double now, std::uint64_t acked);
  // Bytes per second acknowledged from the newest sample at least `span` seconds old (or the
  // oldest kept) to now; 0 before two samples.
  double rate(double span) const;

 private:
  struct Point {
    double at = 0;
    std::uint64_t acked = 0;
  };
  std::array<Point, kSamples> ring_{};
  std::size_t next_ = 0, count_ = 0;
};

}  // namespace transport::udp
