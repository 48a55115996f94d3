#pragma once
// How much data one association may keep in flight (pure logic, time passed in): a cap on
// SCTP's congestion window that follows the path's measured bandwidth-delay product.
//
// Why: SCTP's congestion control (usrsctp: Reno-like) grows its window until a loss, and with
// FEC below it most losses never reach it, so nothing stops the window at the path's capacity:
// the excess waits in the queue in front of the narrowest link (measured over a 20 ms WAN: 7 MB
// in flight where 1.5 MB fill the path, pings 500 ms late). A queue that long also makes
// usrsctp's retransmission timer mark the whole window as lost (it resends every chunk older
// than its RTT estimate when the timer fires). Capped at a few times the bandwidth-delay
// product, the queue on the path stays short; what the senders behind the TUN send beyond it
// waits in the association's send buffer instead, where every flow has its own stream and the
// streams take turns, so a ping does not wait behind a bulk transfer.
//
//   bandwidth = the highest delivery rate (bytes acknowledged per interval) of the last
//               `bandwidth_window` seconds
//   rtt_min   = the lowest smoothed RTT of the last `rtt_window` seconds
//   cap       = max(min_cap, gain * bandwidth * rtt_min), gain 2
// The gain leaves room for the delivery rate to grow (the cap doubles as fast as the data
// delivered does), as BBR's window gain does. With the cap in force our own queue on the path is
// at most (gain - 1) bandwidth-delay products, so a smoothed RTT above (gain + 0.5) * rtt_min
// for `rtt_raise` seconds is not ours: the path got longer (a route change, another path) or
// someone else's queue grew; rtt_min is raised to it at once instead of starving the path with
// a cap made for the shorter RTT until the window forgets it.

#include <cstdint>
#include <deque>

namespace transport {

struct InflightCapOptions {
  double gain = 2.0;
  std::uint64_t min_cap = 256 << 10;  // bytes: never less (a slow start needs room to grow)
  double bandwidth_window = 2.0;      // seconds of delivery-rate samples behind `bandwidth`
  double rtt_window = 10.0;           // seconds of RTT samples behind `rtt_min`
  double rtt_raise = 1.0;             // seconds of RTTs beyond what the cap explains: raised
  double interval = 0.2;              // seconds: delivery rate is measured over at least this
                                      // and two RTTs (bursts of acknowledgements even out)
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
