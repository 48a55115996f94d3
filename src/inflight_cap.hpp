#pragma once
// How much data one association may keep in flight (pure logic, time passed in): a cap on
// SCTP's congestion window that follows the path's measured bandwidth-delay product.
//
// Why: SCTP's congestion control (usrsctp: Reno-like) grows its window until a loss, and with
// FEC below it most losses never reach it, so nothing stops the window at the path's capacity:
// the excess waits in the queue in front of the narrowest link (measured over a 20 ms WAN: 7 MB
// in flight where 1.5 MB fill the path, pings 500 ms late). A queue that long also makes
// usrsctp's retransmission timer mark the whole window as lost (it resends every chunk older
// than its RTT estimate when the timer fires). Capped at twice the bandwidth-delay product, our
// queue on the path is at most one bandwidth-delay product; what the senders behind the TUN send
// beyond it waits in the association's send buffer instead, where every flow has its own stream
// and the streams take turns, so a ping does not wait behind a bulk transfer.
//
//   bandwidth = the highest delivery rate (bytes acknowledged per interval of at least one RTT
//               and `interval` seconds) of the last `bandwidth_window` seconds
//   rtt_min   = the lowest smoothed RTT of the last `rtt_window` seconds
//   cap       = max(min_cap, gain * bandwidth * rtt_min)
// Gain 2 lets the cap double per RTT as SCTP's slow start does, with the rate measured per RTT:
// measured over two RTTs, the cap held slow start to a doubling per two RTTs (at 100 ms it took
// 0.7 s longer to fill 250 Mbit/s). A smoothed RTT beyond what the cap explains (gain + 0.5
// times rtt_min) for `rtt_raise` seconds is not ours: the path got longer (a route change,
// another path) or someone else's queue grew; rtt_min is raised to it at once instead of
// starving the path with a cap made for the shorter RTT until the window forgets it.
//
// Without pacing the window is SCTP's only brake. A lower gain once the pipe is full (BBR's 1.25)
// measured worse here: at 20 ms, 8 streams moved 690 instead of 840 Mbit/s with no shorter ping
// queue (bench/README.md).

#include <cstdint>
#include <deque>

namespace transport {

struct InflightCapOptions {
  double gain = 2.0;
  std::uint64_t min_cap = 256 << 10;  // bytes: never less (a slow start needs room to grow)
  double bandwidth_window = 2.0;      // seconds of delivery-rate samples behind `bandwidth`
  double rtt_window = 10.0;           // seconds of RTT samples behind `rtt_min`
  double rtt_raise = 1.0;             // seconds of RTTs beyond what the cap explains: raised
  double interval = 0.05;             // seconds: delivery rate is measured over at least this
                                      // and one RTT
};

class InflightCap {
 public:
  explicit InflightCap(InflightCapOptions options = {});
  // acked: bytes the association had acknowledged in all (cumulative); srtt: its smoothed RTT,
  // seconds (0: not known yet).
  void sample(double now, std::uint64_t acked, double srtt);
  // The cap in bytes; 0 while nothing is known (no cap).
  std::uint64_t cap() const { return cap_; }
  double bandwidth() const { return bandwidth_; }  // bytes per second
  double rtt_min() const { return rtt_min_; }      // seconds (0: not known)

 private:
  struct Point {
    double at, value;
  };
  InflightCapOptions options_;
  bool started_ = false;
  double interval_start_ = 0;
  std::uint64_t interval_acked_ = 0;
  std::deque<Point> rates_, rtts_;  // monotonic deques: max of rates, min of rtts
  double bandwidth_ = 0, rtt_min_ = 0;
  double high_since_ = -1;  // since when the RTT has been beyond what the cap explains
  std::uint64_t cap_ = 0;
};

}  // namespace transport
